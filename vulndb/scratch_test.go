package vulndb

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestScratchBig(t *testing.T) {
	var vs, al, rs []string
	for i := 0; i < 20000; i++ {
		vs = append(vs, fmt.Sprintf("%q", fmt.Sprintf("1.%d.0", i)))
		al = append(al, fmt.Sprintf("%q", fmt.Sprintf("CVE-%d", i)))
		rs = append(rs, fmt.Sprintf(`{"type":"ECOSYSTEM","events":[{"introduced":"2.%d.0"},{"fixed":"2.%d.1"}]}`, i, i))
	}
	for _, tc := range []struct{ name, data string }{
		{"versions", `{"id":"X","affected":[{"package":{"ecosystem":"npm","name":"a"},"versions":[` + strings.Join(vs, ",") + `]}]}`},
		{"aliases", `{"id":"X","aliases":[` + strings.Join(al, ",") + `]}`},
		{"ranges", `{"id":"X","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[` + strings.Join(rs, ",") + `],"versions":[` + strings.Join(vs[:2000], ",") + `]}]}`},
	} {
		start := time.Now()
		rec, err := parseRecord([]byte(tc.data))
		if err != nil {
			t.Fatal(err)
		}
		conv := convertRecord(rec)
		t.Logf("%s: %d bytes, %v, %d packages", tc.name, len(tc.data), time.Since(start), len(conv.packages))
	}
}
