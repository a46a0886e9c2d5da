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
    default:
      sql:
        pluginName: postgres12
        databaseName: temporal
        connectAddr: "127.0.0.1:{{.PG}}"
        connectProtocol: tcp
        user: postgres
        password: lab
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
    visibility:
      sql:
        pluginName: postgres12
        databaseName: temporal_visibility
        connectAddr: "127.0.0.1:{{.PG}}"
        connectProtocol: tcp
        user: postgres
        password: lab
        maxConns: 10
        maxIdleConns: 10
        maxConnLifetime: 1h

global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1

services:
  frontend:
    rpc:
      grpcPort: {{.P.frontend}}
      httpPort: {{.P.frontendHTTP}}
      membershipPort: {{.P.frontendMember}}
      bindOnLocalHost: true
  history:
    rpc:
      grpcPort: {{.P.history}}
      membershipPort: {{.P.historyMember}}
      bindOnLocalHost: true
  matching:
    rpc:
      grpcPort: {{.P.matching}}
      membershipPort: {{.P.matchingMember}}
      bindOnLocalHost: true
  worker:
    rpc:
      grpcPort: {{.P.worker}}
      membershipPort: {{.P.workerMember}}
      bindOnLocalHost: true

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
      rpcAddress: "127.0.0.1:{{.P.frontend}}"

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
	data := map[string]any{"PG": c.pgPort, "Dynamic": dynamic, "P": map[string]int{
		"frontend": p.frontend, "frontendHTTP": p.frontendHTTP, "frontendMember": p.frontendMember,
		"history": p.history, "historyMember": p.historyMember,
		"matching": p.matching, "matchingMember": p.matchingMember,
		"worker": p.worker, "workerMember": p.workerMember,
	}}
	if err := serverConfig.Execute(f, data); err != nil {
		return fmt.Errorf("cluster: server config: %w", err)
	}
	return f.Close()
}
