// Oracle for tests/unit/test_goregex.py: Go's own regexp package answers what the
// toolkit's chts.goregex must answer. Standard library only, built at test time.
//
// Input, one JSON object per line: {"p": pattern, "s": [input, ...]}.
// Output, one JSON object per line: {"err": message} when regexp.Compile refuses
// the pattern, else {"m": [MatchString(input), ...]}.
// With the argument "tables" it prints the names of unicode.Categories and
// unicode.Scripts instead.
package main

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"unicode"
)

type query struct {
	P string   `json:"p"`
	S []string `json:"s"`
}

type answer struct {
	Err *string `json:"err,omitempty"`
	M   []bool  `json:"m,omitempty"`
}

func names(table map[string]*unicode.RangeTable) []string {
	result := []string{}
	for name := range table {
		result = append(result, name)
	}
	sort.Strings(result)
	return result
}

func main() {
	out := json.NewEncoder(os.Stdout)
	if len(os.Args) > 1 && os.Args[1] == "tables" {
		out.Encode(map[string][]string{"categories": names(unicode.Categories), "scripts": names(unicode.Scripts)})
		return
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	for in.Scan() {
		var q query
		if err := json.Unmarshal(in.Bytes(), &q); err != nil {
			panic(err)
		}
		re, err := regexp.Compile(q.P)
		if err != nil {
			message := err.Error()
			out.Encode(answer{Err: &message})
			continue
		}
		matches := make([]bool, len(q.S))
		for i, s := range q.S {
			matches[i] = re.MatchString(s)
		}
		out.Encode(answer{M: matches})
	}
}
