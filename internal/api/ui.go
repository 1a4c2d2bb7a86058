package api

import (
	"embed"
	"io/fs"
	"net/http"
)

// ui is the web dashboard: plain HTML, CSS and JavaScript that poll the
// /v1 endpoints; nothing is fetched from elsewhere, so it works offline.
//
//go:embed ui
var ui embed.FS

// dashboardCSP keeps the page to what the binary serves.
const dashboardCSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"

func serveIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", dashboardCSP)
	http.ServeFileFS(w, r, ui, "ui/index.html")
}

// uiFiles serves the dashboard's files under /ui/.
func uiFiles() http.Handler {
	sub, err := fs.Sub(ui, "ui")
	if err != nil {
		panic(err) // the embedded tree always has ui/
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", dashboardCSP)
		files.ServeHTTP(w, r)
	})
}
