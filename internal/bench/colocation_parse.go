package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what wrk --latency reports.
type wrkResult struct {
	P50, P99    time.Duration
	RequestsSec float64
	Requests    int
	Errors      int // socket errors (connect, read, write, timeout) and non-2xx/3xx replies
}

// parseWrk parses the output of "wrk --latency": the "Latency
// Distribution" block (50% and 99% lines), "N requests in ...",
// "Requests/sec:" and the optional "Socket errors:" and "Non-2xx or 3xx
// responses:" lines.
func parseWrk(out []byte) (wrkResult, error) {
	var res wrkResult
	var have50, have99, haveRate bool
	inDist := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case line == "Latency Distribution":
			inDist = true
		case inDist && len(f) == 2 && strings.HasSuffix(f[0], "%"):
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return res, fmt.Errorf("wrk latency line %q: %w", line, err)
			}
			switch f[0] {
			case "50%", "50.000%":
				res.P50, have50 = d, true
			case "99%", "99.000%":
				res.P99, have99 = d, true
			}
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			inDist = false
			n, err := strconv.Atoi(f[0])
			if err != nil {
				return res, fmt.Errorf("wrk line %q: %w", line, err)
			}
			res.Requests = n
		case strings.HasPrefix(line, "Requests/sec:"):
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, "Requests/sec:")), 64)
			if err != nil {
				return res, fmt.Errorf("wrk line %q: %w", line, err)
			}
			res.RequestsSec, haveRate = v, true
		case strings.HasPrefix(line, "Socket errors:"):
			// Socket errors: connect 0, read 1, write 0, timeout 12
			for _, part := range strings.Split(strings.TrimPrefix(line, "Socket errors:"), ",") {
				kv := strings.Fields(part)
				if len(kv) != 2 {
					return res, fmt.Errorf("wrk line %q: malformed", line)
				}
				n, err := strconv.Atoi(kv[1])
				if err != nil {
					return res, fmt.Errorf("wrk line %q: %w", line, err)
				}
				res.Errors += n
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "Non-2xx or 3xx responses:")))
			if err != nil {
				return res, fmt.Errorf("wrk line %q: %w", line, err)
			}
			res.Errors += n
		}
	}
	if !have50 || !have99 || !haveRate {
		return res, fmt.Errorf("wrk output has no latency distribution or Requests/sec (was --latency given?): %q", lastBytes(out, 300))
	}
	return res, nil
}

// parseWrkDuration parses wrk's latency figures: "812.00us", "1.21ms",
// "2.00s", "1.00m".
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   float64
	}{{"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
			return time.Duration(v * u.unit), nil
		}
	}
	return 0, fmt.Errorf("duration %q: no unit", s)
}

// parseStressNGMetrics parses the table stress-ng --metrics-brief prints:
//
//	stress-ng: metrc: [29055] stressor       bogo ops real time  usr time  sys time   bogo ops/s     bogo ops/s
//	stress-ng: metrc: [29055]                           (secs)    (secs)    (secs)   (real time) (usr+sys time)
//	stress-ng: metrc: [29055] cpu                 744      2.00      0.69      0.00       371.12        1072.97
//
// (older versions say "info:" instead of "metrc:") and returns the bogo ops
// per second of wall-clock time of each stressor, summed if a stressor
// appears more than once. Lines after the table ("miscellaneous metrics")
// are ignored.
func parseStressNGMetrics(out []byte) (map[string]float64, error) {
	res := map[string]float64{}
	inTable := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		// Drop the "stress-ng: metrc: [pid]" prefix.
		if _, after, ok := strings.Cut(line, "] "); ok && strings.HasPrefix(line, "stress-ng:") {
			line = after
		} else {
			continue
		}
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "stressor" && strings.Contains(line, "bogo ops"):
			inTable = true
		case !inTable || len(f) == 0:
		case strings.HasPrefix(f[0], "("):
			// the units line
		case len(f) == 7:
			rate, err := strconv.ParseFloat(f[5], 64)
			if err != nil {
				return nil, fmt.Errorf("stress-ng metrics line %q: %w", sc.Text(), err)
			}
			res[f[0]] += rate
		default:
			inTable = false // "miscellaneous metrics:" or the end of the table
		}
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("stress-ng output has no --metrics-brief table: %q", lastBytes(out, 300))
	}
	return res, nil
}

// percentile returns the nearest-rank p-th percentile of ds (which it
// sorts), or 0 for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(p/100*float64(len(ds))+0.999999999) - 1
	return ds[min(max(rank, 0), len(ds)-1)]
}

// lastBytes returns at most the last n bytes of b, as a trimmed string.
func lastBytes(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
