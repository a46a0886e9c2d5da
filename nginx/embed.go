// Package nginx holds the nginx stream configuration template that dnsroll
// renders for its load balancers. It is embedded so the dnsroll binary is
// self-contained: a worker needs no checkout beside it to switch traffic.
// The lb/nginx driver renders it.
package nginx

import _ "embed"

// StreamConf is the text/template source of a complete nginx.conf for one
// load balancer. Its data is lb/nginx.TemplateData; it needs no template
// functions, so other drivers and tests can parse it as is.
//
//go:embed stream.conf.tmpl
var StreamConf string
