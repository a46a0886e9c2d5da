package main

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
)

// attrsClient is a Temporal client whose namespace has the given custom
// search attributes.
type attrsClient struct {
	client.Client
	attrs map[string]enumspb.IndexedValueType
}

func (c attrsClient) OperatorService() operatorservice.OperatorServiceClient {
	return attrsOperator{attrs: c.attrs}
}

type attrsOperator struct {
	operatorservice.OperatorServiceClient
	attrs map[string]enumspb.IndexedValueType
}

func (o attrsOperator) ListSearchAttributes(context.Context, *operatorservice.ListSearchAttributesRequest, ...grpc.CallOption) (*operatorservice.ListSearchAttributesResponse, error) {
	return &operatorservice.ListSearchAttributesResponse{CustomAttributes: o.attrs}, nil
}

// Workers and the API refuse a namespace that lacks one of the search
// attributes rollouts set, Revision included, and print the command that
// fixes it.
func TestCheckSearchAttributes(t *testing.T) {
	const kw = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	tests := []struct {
		name  string
		attrs map[string]enumspb.IndexedValueType
		want  []string // in the error; none: no error
	}{
		{"all three", map[string]enumspb.IndexedValueType{"Fleet": kw, "Phase": kw, "Revision": kw}, nil},
		{"no Revision", map[string]enumspb.IndexedValueType{"Fleet": kw, "Phase": kw}, []string{
			"namespace ns1 is not ready for rollouts: search attribute Revision is missing",
			"temporal operator search-attribute create --namespace ns1 --name Revision --type Keyword",
		}},
		{"none", nil, []string{
			"Fleet is missing, Phase is missing, Revision is missing",
			"--name Fleet --type Keyword", "--name Phase --type Keyword", "--name Revision --type Keyword",
		}},
		{"Revision as Text", map[string]enumspb.IndexedValueType{"Fleet": kw, "Phase": kw, "Revision": enumspb.INDEXED_VALUE_TYPE_TEXT}, []string{
			"Revision is Text, not Keyword",
			"temporal operator search-attribute remove --namespace ns1 --name Revision",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, checkSearchAttributes(context.Background(), attrsClient{attrs: tt.attrs}, "ns1"), tt.want...)
		})
	}
}

// The places that create the search attributes outside the lab (the compose
// file and the README's commands) name every one that rollouts set.
func TestSearchAttributesDocumented(t *testing.T) {
	compose := repoFile(t, "docker-compose.yml")
	readme := repoFile(t, "README.md")
	loop := regexp.MustCompile(`for sa in ([A-Za-z ]+); do`).FindSubmatch(compose)
	if loop == nil {
		t.Fatal("docker-compose.yml: no `for sa in ...; do` loop creating the search attributes")
	}
	production := repoFile(t, "docs/production.md")
	for _, name := range searchAttributeNames() {
		for file, text := range map[string][]byte{"README.md": readme, "docs/production.md": production} {
			if !strings.Contains(string(text), "`"+name+"`") {
				t.Errorf("%s does not name the search attribute `%s`", file, name)
			}
		}
		if !slices.Contains(strings.Fields(string(loop[1])), name) {
			t.Errorf("docker-compose.yml creates %q, not %s", loop[1], name)
		}
		cmd := "temporal operator search-attribute create --namespace default --name " + name + " --type Keyword"
		if !strings.Contains(string(readme), cmd) {
			t.Errorf("README.md lacks %q", cmd)
		}
	}
}
