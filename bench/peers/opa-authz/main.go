// opa-authz: the Check peer of the benchmarks. It stands in for opa-envoy-plugin (whose module
// the Go module proxy reachable from our machines refuses) by doing what that plugin does on
// its hot path, with the same OPA release we pin for policies: protojson-marshal the
// CheckRequest attributes into the input document, add parsed_path / parsed_query, evaluate
// a query prepared once with OPA's Go SDK (topdown, not wasm), answer OK or 403. Like the OPA
// runtime that hosts the plugin, it evaluates with an inter-query built-in value cache in OPA's
// default configuration (parsed JWKS cached; verified-token cache "io_jwt" off unless
// -jwt-cache sets its size).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/url"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown/cache"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
)

type server struct {
	authv3.UnimplementedAuthorizationServer
	query rego.PreparedEvalQuery
	cache cache.InterQueryValueCache
}

func input(req *authv3.CheckRequest) (map[string]interface{}, error) {
	bs, err := protojson.Marshal(req)
	if err != nil {
		return nil, err
	}
	var in map[string]interface{}
	if err := json.Unmarshal(bs, &in); err != nil {
		return nil, err
	}
	path := req.GetAttributes().GetRequest().GetHttp().GetPath()
	p, q, _ := strings.Cut(path, "?")
	segments := strings.Split(strings.TrimLeft(p, "/"), "/")
	parsedPath := make([]interface{}, len(segments))
	for i, s := range segments {
		parsedPath[i] = s
	}
	in["parsed_path"] = parsedPath
	query := map[string]interface{}{}
	if values, err := url.ParseQuery(q); err == nil {
		for k, vs := range values {
			list := make([]interface{}, len(vs))
			for i, v := range vs {
				list[i] = v
			}
			query[k] = list
		}
	}
	in["parsed_query"] = query
	in["parsed_body"] = nil
	in["truncated_body"] = false
	return in, nil
}

func (s *server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	in, err := input(req)
	if err != nil {
		return nil, err
	}
	rs, err := s.query.Eval(ctx, rego.EvalInput(in), rego.EvalInterQueryBuiltinValueCache(s.cache))
	if err != nil {
		return nil, err
	}
	allowed := len(rs) == 1 && len(rs[0].Expressions) == 1 && rs[0].Expressions[0].Value == true
	if allowed {
		return &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.OK)}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}, nil
	}
	return &authv3.CheckResponse{
		Status: &status.Status{Code: int32(codes.PermissionDenied)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden},
			Headers: []*core.HeaderValueOption{},
		}},
	}, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9291", "listen address")
	policy := flag.String("policy", "", "directory with the Rego policy and its data.json")
	query := flag.String("query", "data.envoy.authz.allow", "decision query")
	jwtCache := flag.Int("jwt-cache", 0, "entries of OPA's io_jwt verified-token cache (0: off, OPA's default)")
	flag.Parse()
	if *policy == "" {
		log.Fatal("-policy is required")
	}
	prepared, err := rego.New(rego.Query(*query), rego.Load([]string{*policy}, nil)).PrepareForEval(context.Background())
	if err != nil {
		log.Fatalf("prepare: %v", err)
	}
	raw := []byte(`{}`)
	if *jwtCache > 0 {
		raw = []byte(fmt.Sprintf(`{"inter_query_builtin_value_cache":{"named":{"io_jwt":{"max_num_entries":%d}}}}`, *jwtCache))
	}
	cfg, err := cache.ParseCachingConfig(raw)
	if err != nil {
		log.Fatalf("cache config: %v", err)
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	g := grpc.NewServer()
	authv3.RegisterAuthorizationServer(g, &server{query: prepared, cache: cache.NewInterQueryValueCache(context.Background(), cfg)})
	log.Printf("opa-authz listening on %s", lis.Addr())
	if err := g.Serve(lis); err != nil {
		log.Fatal(err)
	}
}
