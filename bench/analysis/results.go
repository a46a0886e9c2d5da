package main

// record is one run of the benchmark, as written to -out.
type record struct {
	When        string           `json:"when"`
	Names       int              `json:"names"`
	Checks      int              `json:"checks"`
	Servers     int              `json:"servers"`
	Concurrency int              `json:"concurrency"`
	Runs        int              `json:"runs"`
	CPUs        int              `json:"cpus"`
	LoadAvg     string           `json:"load_average"`
	Named       string           `json:"named"`
	Analyses    []analysisRecord `json:"analyses"`
	Dnsperf     []dnsperfRecord  `json:"dnsperf"`
	// Ratio is the first analysis's (every target over UDP) queries per
	// second over dnsperf's over UDP; the goal is at least 0.5.
	Ratio float64 `json:"ratio_udp"`
}

type analysisRecord struct {
	Scenario              string  `json:"scenario"`
	Seconds               float64 `json:"seconds"`
	Queries               int     `json:"queries"`
	QPS                   float64 `json:"queries_per_second"`
	NamesServersPerSecond float64 `json:"names_servers_per_second"`
	// CPUMicrosPerQuery is this process's CPU time per query in its
	// cheapest run, which other load on the machine hardly changes.
	CPUMicrosPerQuery float64 `json:"cpu_us_per_query"`
}

type dnsperfRecord struct {
	Protocol          string  `json:"protocol"`
	Seconds           int     `json:"seconds"`
	QPS               float64 `json:"queries_per_second"`
	CPUMicrosPerQuery float64 `json:"cpu_us_per_query"`
}
