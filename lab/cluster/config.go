package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"text/template"
)

// serverConfig is the server's static config: both stores on PostgreSQL,
// the four services in one process on loopback, no metrics or pprof port.
var serverConfig = template.Must(template.New("").Parse(`log:
  stdout: true
  level: warn

persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
{{- range .Stores}}
    {{.Name}}:
      sql:
        pluginName: postgres12
        databaseName: {{.Database}}
        connectAddr: "127.0.0.1:{{$.PG}}"
        connectProtocol: tcp
        user: postgres
        password: lab
        maxConns: {{.Conns}}
        maxIdleConns: {{.Conns}}
        maxConnLifetime: 1h
{{- end}}

global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1

services:
{{- range .Services}}
  {{.Name}}:
    rpc:
      grpcPort: {{.GRPC}}
{{- if .HTTP}}
      httpPort: {{.HTTP}}
{{- end}}
      membershipPort: {{.Member}}
      bindOnLocalHost: true
{{- end}}

clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:{{.Frontend}}"

dcRedirectionPolicy:
  policy: noop

dynamicConfigClient:
  filepath: "{{.Dynamic}}"
  pollInterval: 10s
`))

// dynamicConfig: a new namespace is usable within a second, not ten.
const dynamicConfig = `system.namespaceCacheRefreshInterval:
  - value: 1s
limit.maxIDLength:
  - value: 255
`

// writeConfig writes config/cluster.yaml (--env cluster) and its dynamic config.
func (c *Cluster) writeConfig() error {
	dir := filepath.Join(c.dir, "config")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	dynamic := filepath.Join(dir, "dynamic.yaml")
	if err := os.WriteFile(dynamic, []byte(dynamicConfig), 0o644); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, "cluster.yaml"))
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer f.Close()
	p := c.ports
	type store struct {
		Name, Database string
		Conns          int
	}
	type service struct {
		Name               string
		GRPC, HTTP, Member int // HTTP: 0 for none
	}
	data := map[string]any{"PG": c.pgPort, "Dynamic": dynamic, "Frontend": p.frontend,
		"Stores": []store{{"default", "temporal", 20}, {"visibility", "temporal_visibility", 10}},
		"Services": []service{
			{"frontend", p.frontend, p.frontendHTTP, p.frontendMember},
			{"history", p.history, 0, p.historyMember},
			{"matching", p.matching, 0, p.matchingMember},
			{"worker", p.worker, 0, p.workerMember},
		}}
	if err := serverConfig.Execute(f, data); err != nil {
		return fmt.Errorf("cluster: server config: %w", err)
	}
	return f.Close()
}
