package engine

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yamlLineRe finds the "line N: " yaml puts in its syntax errors.
var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlSyntaxError returns the line (1-based) of a YAML syntax error in data
// and its message without the parser's own line.
//
// The parser reports a syntax error at the start of the construct it was
// inside (a flow mapping, the block holding it), often lines above the
// mistake: an unclosed '{' on line 7 of a rule file is "line 2" or "line 6".
// The line given here is the first line whose prefix of the file no longer
// parses: where the text stops being YAML. Files of more than maxLines are
// not searched; the parser's own line is kept for them.
func yamlSyntaxError(data []byte, err error) (int, string) {
	const maxLines = 5000
	msg := err.Error()
	line := 0
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		_, _ = fmt.Sscan(m[1], &line)
		msg = "yaml: " + msg[len(m[0]):]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if bytes.Count(data, []byte("\n")) > maxLines {
		return line, msg
	}
	end := 0
	for n := 1; end < len(data); n++ {
		i := bytes.IndexByte(data[end:], '\n')
		if i < 0 {
			end = len(data)
		} else {
			end += i + 1
		}
		var node yaml.Node
		if yaml.Unmarshal(data[:end], &node) != nil {
			return n, msg
		}
	}
	return line, msg
}

// celIssueRe matches the head of one issue in a cel-go error:
// "ERROR: <input>:1:39: message".
var celIssueRe = regexp.MustCompile(`^ERROR: <input>:(\d+):(\d+): (.*)$`)

// celMessage formats a cel-go compile error for a diagnostic: each issue on
// its own line with its position in the expression, and cel-go's source
// line and caret under it, indented, as cel-go draws them.
func celMessage(err error) string {
	var b strings.Builder
	b.WriteString("CEL: ")
	first := true
	for _, l := range strings.Split(err.Error(), "\n") {
		if m := celIssueRe.FindStringSubmatch(l); m != nil {
			if !first {
				b.WriteString("\n    CEL: ")
			}
			fmt.Fprintf(&b, "%s (expression line %s, column %s)", m[3], m[1], m[2])
			first = false
			continue
		}
		if strings.TrimSpace(l) == "" {
			continue
		}
		if first {
			b.WriteString(l)
			first = false
			continue
		}
		b.WriteString("\n    " + l)
	}
	return b.String()
}
