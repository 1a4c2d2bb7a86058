package dna

import "strings"

// AbsentReason says when gene name is absent, following the catalog's "as
// other_gene" references; "" for a gene not in the catalog.
func AbsentReason(name string) string {
	for range len(Catalog) { // a chain of "as" is shorter than the catalog
		gi, ok := geneInfo(name)
		if !ok {
			return ""
		}
		next, isRef := strings.CutPrefix(gi.Absent, "as ")
		if !isRef {
			return gi.Absent
		}
		if _, ok := geneInfo(next); !ok {
			return gi.Absent
		}
		name = next
	}
	return ""
}

func geneInfo(name string) (GeneInfo, bool) {
	for _, gi := range Catalog {
		if gi.Name == name {
			return gi, true
		}
	}
	return GeneInfo{}, false
}
