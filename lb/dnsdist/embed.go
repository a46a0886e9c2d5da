package dnsdist

import _ "embed"

// confTemplate is the text/template source of a complete dnsdist.conf; its
// data is TemplateData. It is embedded so that a worker needs no checkout
// beside its binary to switch traffic.
//
//go:embed dnsdist.conf.tmpl
var confTemplate string
