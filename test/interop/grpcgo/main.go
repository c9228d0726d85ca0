// grpc-interop: a grpc-go client for envoy-authz's interop test
// (test/integration/grpc-interop-go.test.ts). Each scenario makes a few calls the way a Go
// service or tool would (Envoy's generated ext_authz v3 / ratelimit v3 types, grpc-go's own
// compression, deadlines, cancellation, binary metadata and health client) and prints one JSON
// document of what came back. It judges nothing: the test asserts on the JSON.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// BinValues are sent as two values of the metadata key x-interop-bin by the bin-metadata
// scenario: bytes that are not valid in a text header (NUL, CR, LF, bytes >= 0x80, '%'), so
// only a base64-decoding server sees them as sent.
var BinValues = [][]byte{{0x00, 0xff, 0x0d, 0x0a, 0x25, 0x80, 0x7f}, []byte("second value")}

// codeNames are the status codes as the gRPC spec spells them (grpc-go's String() is CamelCase).
var codeNames = map[codes.Code]string{
	codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN", codes.InvalidArgument: "INVALID_ARGUMENT",
	codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
	codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED", codes.OutOfRange: "OUT_OF_RANGE",
	codes.Unimplemented: "UNIMPLEMENTED", codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE",
	codes.DataLoss: "DATA_LOSS", codes.Unauthenticated: "UNAUTHENTICATED",
}

type options struct {
	addr, ca, serverName                string
	scenario, rpc                       string
	token, path, requestID, traceparent string
	domain, descriptor                  string
	count                               int
	deadline, cancelAfter               time.Duration
	services                            string
}

// CheckResult is the part of a CheckResponse the tests look at.
type CheckResult struct {
	Status     int32             `json:"status"`
	Allowed    bool              `json:"allowed"`
	HTTPStatus int32             `json:"http_status,omitempty"`
	Headers    map[string]string `json:"headers"`
}

// RateLimitResult is the part of a RateLimitResponse the tests look at.
type RateLimitResult struct {
	Overall   string   `json:"overall"`
	Remaining []uint32 `json:"remaining"`
}

// CallResult is one call: its gRPC status, how long it took, and the decoded answer.
type CallResult struct {
	RPC            string           `json:"rpc"`
	Code           string           `json:"code"`
	Message        string           `json:"message"`
	ElapsedMs      float64          `json:"elapsed_ms"`
	Compressed     bool             `json:"compressed,omitempty"`
	AcceptEncoding []string         `json:"accept_encoding,omitempty"`
	Check          *CheckResult     `json:"check,omitempty"`
	RateLimit      *RateLimitResult `json:"ratelimit,omitempty"`
	Service        *string          `json:"service,omitempty"`
	Health         string           `json:"health,omitempty"`
}

// Report is what the program prints.
type Report struct {
	Scenario string       `json:"scenario"`
	SentBin  []string     `json:"sent_bin,omitempty"`
	Calls    []CallResult `json:"calls"`
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "", "host:port of envoy-authz's gRPC listener")
	flag.StringVar(&o.ca, "ca", "", "PEM CA file: connect with TLS (without it: plaintext)")
	flag.StringVar(&o.serverName, "servername", "localhost", "TLS server name to verify")
	flag.StringVar(&o.scenario, "scenario", "", "check | ratelimit | gzip | deadline | cancel | bin-metadata | health")
	flag.StringVar(&o.rpc, "rpc", "check", "deadline, cancel: check | ratelimit")
	flag.StringVar(&o.token, "token", "", "bearer credential for Check (the check scenario's first call, and every other Check)")
	flag.StringVar(&o.path, "path", "/orders", "request path inside the CheckRequest")
	flag.StringVar(&o.requestID, "request-id", "interop-1", "request id inside the CheckRequest (the audit record's request_id)")
	flag.StringVar(&o.traceparent, "traceparent", "", "bin-metadata: W3C traceparent sent as text metadata beside the binary values")
	flag.StringVar(&o.domain, "domain", "interop", "rate-limit domain")
	flag.StringVar(&o.descriptor, "descriptor", "user=interop", "rate-limit descriptor entries key=value[,key=value]")
	flag.IntVar(&o.count, "count", 1, "ratelimit: number of ShouldRateLimit calls")
	flag.DurationVar(&o.deadline, "deadline", 5*time.Second, "deadline of each call")
	flag.DurationVar(&o.cancelAfter, "cancel-after", 200*time.Millisecond, "cancel: cancel the call's context after this long")
	flag.StringVar(&o.services, "services", ",envoy.service.auth.v3.Authorization", "health: service names to check, comma-separated ('' is the server)")
	flag.Parse()

	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "grpc-interop:", err)
		os.Exit(2)
	}
}

func run(o options) error {
	if o.addr == "" {
		return errors.New("-addr is required")
	}
	creds := insecure.NewCredentials()
	if o.ca != "" {
		c, err := credentials.NewClientTLSFromFile(o.ca, o.serverName)
		if err != nil {
			return err
		}
		creds = c
	}
	conn, err := grpc.NewClient(o.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	c := &client{o: o, authz: authv3.NewAuthorizationClient(conn), rls: rlsv3.NewRateLimitServiceClient(conn), health: healthpb.NewHealthClient(conn)}

	report := Report{Scenario: o.scenario, Calls: []CallResult{}}
	switch o.scenario {
	case "check":
		// Allowed with the credential, denied without one.
		report.Calls = append(report.Calls, c.check(context.Background(), o.token, nil), c.check(context.Background(), "", nil))
	case "ratelimit":
		for i := 0; i < o.count; i++ {
			report.Calls = append(report.Calls, c.rateLimit(context.Background(), nil))
		}
	case "gzip":
		gz := []grpc.CallOption{grpc.UseCompressor(gzip.Name)}
		check, rl := c.check(context.Background(), o.token, gz), c.rateLimit(context.Background(), gz)
		check.Compressed, rl.Compressed = true, true
		report.Calls = append(report.Calls, check, rl)
	case "deadline":
		report.Calls = append(report.Calls, c.call(context.Background(), o.rpc))
	case "cancel":
		ctx, cancel := context.WithCancel(context.Background())
		timer := time.AfterFunc(o.cancelAfter, cancel)
		report.Calls = append(report.Calls, c.call(ctx, o.rpc))
		timer.Stop()
		cancel()
	case "bin-metadata":
		md := metadata.MD{}
		for _, v := range BinValues {
			// grpc-go base64-encodes values of -bin keys on the wire; the server must decode them.
			md.Append("x-interop-bin", string(v))
			report.SentBin = append(report.SentBin, hex.EncodeToString(v))
		}
		if o.traceparent != "" {
			md.Set("traceparent", o.traceparent)
		}
		report.Calls = append(report.Calls, c.check(metadata.NewOutgoingContext(context.Background(), md), o.token, nil))
	case "health":
		for _, s := range strings.Split(o.services, ",") {
			report.Calls = append(report.Calls, c.healthCheck(s))
		}
	default:
		return fmt.Errorf("unknown -scenario %q", o.scenario)
	}
	return json.NewEncoder(os.Stdout).Encode(report)
}

type client struct {
	o      options
	authz  authv3.AuthorizationClient
	rls    rlsv3.RateLimitServiceClient
	health healthpb.HealthClient
}

func (c *client) call(ctx context.Context, rpc string) CallResult {
	if rpc == "ratelimit" {
		return c.rateLimit(ctx, nil)
	}
	return c.check(ctx, c.o.token, nil)
}

// timed runs one call under the -deadline and fills in its status, timing and response headers.
func (c *client) timed(ctx context.Context, rpc string, opts []grpc.CallOption, do func(context.Context, []grpc.CallOption) error) CallResult {
	ctx, cancel := context.WithTimeout(ctx, c.o.deadline)
	defer cancel()
	var header metadata.MD
	started := time.Now()
	err := do(ctx, append(opts, grpc.Header(&header)))
	st := status.Convert(err)
	return CallResult{
		RPC:            rpc,
		Code:           codeNames[st.Code()],
		Message:        st.Message(),
		ElapsedMs:      float64(time.Since(started).Microseconds()) / 1000,
		AcceptEncoding: header.Get("grpc-accept-encoding"),
	}
}

func (c *client) check(ctx context.Context, token string, opts []grpc.CallOption) CallResult {
	headers := map[string]string{":method": "GET", ":path": c.o.path, ":authority": "api.example.test", "x-request-id": c.o.requestID}
	if token != "" {
		headers["authorization"] = "Bearer " + token
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &core.Address{Address: &core.Address_SocketAddress{
			SocketAddress: &core.SocketAddress{Address: "127.0.0.1", PortSpecifier: &core.SocketAddress_PortValue{PortValue: 50000}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: c.o.requestID, Method: "GET", Path: c.o.path, Host: "api.example.test", Scheme: "http", Protocol: "HTTP/1.1", Headers: headers,
		}},
	}}
	var res *authv3.CheckResponse
	r := c.timed(ctx, "check", opts, func(ctx context.Context, opts []grpc.CallOption) (err error) {
		res, err = c.authz.Check(ctx, req, opts...)
		return err
	})
	if res != nil {
		cr := &CheckResult{Status: res.GetStatus().GetCode(), Headers: map[string]string{}}
		if ok := res.GetOkResponse(); ok != nil {
			cr.Allowed = cr.Status == int32(codes.OK)
			for _, h := range ok.GetHeaders() {
				cr.Headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
			}
		}
		if denied := res.GetDeniedResponse(); denied != nil {
			cr.HTTPStatus = int32(denied.GetStatus().GetCode())
			for _, h := range denied.GetHeaders() {
				cr.Headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
			}
		}
		r.Check = cr
	}
	return r
}

func (c *client) rateLimit(ctx context.Context, opts []grpc.CallOption) CallResult {
	var entries []*rlcommon.RateLimitDescriptor_Entry
	for _, kv := range strings.Split(c.o.descriptor, ",") {
		k, v, _ := strings.Cut(kv, "=")
		entries = append(entries, &rlcommon.RateLimitDescriptor_Entry{Key: k, Value: v})
	}
	req := &rlsv3.RateLimitRequest{Domain: c.o.domain, Descriptors: []*rlcommon.RateLimitDescriptor{{Entries: entries}}, HitsAddend: 1}
	var res *rlsv3.RateLimitResponse
	r := c.timed(ctx, "ratelimit", opts, func(ctx context.Context, opts []grpc.CallOption) (err error) {
		res, err = c.rls.ShouldRateLimit(ctx, req, opts...)
		return err
	})
	if res != nil {
		rr := &RateLimitResult{Overall: res.GetOverallCode().String(), Remaining: []uint32{}}
		for _, s := range res.GetStatuses() {
			rr.Remaining = append(rr.Remaining, s.GetLimitRemaining())
		}
		r.RateLimit = rr
	}
	return r
}

func (c *client) healthCheck(service string) CallResult {
	var res *healthpb.HealthCheckResponse
	r := c.timed(context.Background(), "health", nil, func(ctx context.Context, opts []grpc.CallOption) (err error) {
		res, err = c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: service}, opts...)
		return err
	})
	r.Service = &service
	if res != nil {
		r.Health = res.GetStatus().String()
	}
	return r
}
