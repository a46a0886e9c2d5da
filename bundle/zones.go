package bundle

// Zone is one zone of a revision as Plan found it: its name, the path of
// its file on the planning worker (a snapshot keeps it under its bundle
// name, see Name), and its SOA serial. A bundle's manifest keeps its zones
// so that workflow history never has to carry a fleet's zone list: a step
// reads them from the worker's store by the revision's hash.
type Zone struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Serial uint32 `json:"serial"`
}
