package acceptor

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/kshaka-io/kshaka/internal/acceptcore"
	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
	"github.com/kshaka-io/kshaka/register"
)

// Register registers the Acceptor, Admin and gRPC health services on s. The
// server must be created with Acceptor.ServerOptions, whose interceptors
// authorize every call (docs/design.md §9.1); the Acceptor and Admin
// services refuse every call on a server created without them.
func (a *Acceptor) Register(s *grpc.Server) {
	kshakav1.RegisterAcceptorServer(s, acceptorServer{a: a})
	kshakav1.RegisterAdminServer(s, adminServer{a: a})
	healthgrpc.RegisterHealthServer(s, a.health)
	// Zero series for every method and code, so rates start at 0.
	a.metrics.grpc.InitializeMetrics(s)
}

// RegisterHealth registers only the gRPC health service on s, for a
// separate plaintext server that probes (the kubelet's) reach without a
// client certificate. It shares the acceptor's health state: SERVING while
// the acceptor is admitted and healthy.
func (a *Acceptor) RegisterHealth(s *grpc.Server) {
	healthgrpc.RegisterHealthServer(s, a.health)
}

// statusErr maps the acceptor's errors to gRPC status codes. It is the only
// place where codes are chosen.
func statusErr(err error) error {
	code := codes.Internal
	switch {
	case errors.Is(err, ErrInvalidRequest):
		code = codes.InvalidArgument
	case errors.Is(err, ErrOutOfService), errors.Is(err, ErrClosed):
		code = codes.Unavailable
	case errors.Is(err, membership.ErrNotAdmitted), errors.Is(err, ErrConfigConflict):
		code = codes.FailedPrecondition
	}
	st := status.New(code, err.Error())
	if errors.Is(err, register.ErrTooFarAhead) {
		if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: register.TooFarAheadReason, Domain: register.ErrorDomain}); derr == nil {
			st = d
		}
	}
	return st.Err()
}

// countStale counts a data-path reply that carries a newer configuration
// (the request's epoch was stale).
func (a *Acceptor) countStale(rpc string, cfg *kshakav1.Config) {
	if cfg != nil {
		a.metrics.staleReplies.WithLabelValues(rpc).Inc()
	}
}

// staleConfig splits a StaleEpochError off err.
func staleConfig(err error) (*kshakav1.Config, error) {
	var se *StaleEpochError
	if errors.As(err, &se) {
		return wire.ConfigToProto(se.Config), nil
	}
	return nil, err
}

type acceptorServer struct {
	kshakav1.UnimplementedAcceptorServer
	a *Acceptor
}

func (s acceptorServer) Prepare(ctx context.Context, req *kshakav1.PrepareRequest) (resp *kshakav1.PrepareResponse, err error) {
	if err := authorized(ctx); err != nil {
		return nil, err
	}
	s.a.metrics.batchItems.WithLabelValues("Prepare").Observe(float64(len(req.GetItems())))
	if err := s.a.addressedTo(req.GetIncarnation()); err != nil {
		return nil, statusErr(err)
	}
	out, err := s.a.prepare(req.GetEpoch(), wire.PrepareItemsFromProto(req.GetItems()))
	resp = &kshakav1.PrepareResponse{}
	if resp.StaleConfig, err = staleConfig(err); err != nil {
		return nil, statusErr(err)
	}
	s.a.countStale("Prepare", resp.StaleConfig)
	for _, o := range out {
		r := &kshakav1.PrepareResult{Ok: o.OK, Accepted: wire.BallotToProto(o.Accepted), Value: wire.ValueToProto(o.Value)}
		if !o.OK {
			r.Conflict = wire.BallotToProto(o.Conflict)
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}

func (s acceptorServer) Accept(ctx context.Context, req *kshakav1.AcceptRequest) (resp *kshakav1.AcceptResponse, err error) {
	if err := authorized(ctx); err != nil {
		return nil, err
	}
	s.a.metrics.batchItems.WithLabelValues("Accept").Observe(float64(len(req.GetItems())))
	if err := s.a.addressedTo(req.GetIncarnation()); err != nil {
		return nil, statusErr(err)
	}
	out, err := s.a.accept(req.GetEpoch(), wire.AcceptItemsFromProto(req.GetItems()))
	resp = &kshakav1.AcceptResponse{}
	if resp.StaleConfig, err = staleConfig(err); err != nil {
		return nil, statusErr(err)
	}
	s.a.countStale("Accept", resp.StaleConfig)
	for _, o := range out {
		r := &kshakav1.AcceptResult{Ok: o.OK}
		if !o.OK {
			r.Conflict, r.Accepted = wire.BallotToProto(o.Conflict), wire.BallotToProto(o.Accepted)
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}

func (s acceptorServer) Read(ctx context.Context, req *kshakav1.ReadRequest) (resp *kshakav1.ReadResponse, err error) {
	if err := authorized(ctx); err != nil {
		return nil, err
	}
	s.a.metrics.batchItems.WithLabelValues("Read").Observe(float64(len(req.GetKeys())))
	if err := s.a.addressedTo(req.GetIncarnation()); err != nil {
		return nil, statusErr(err)
	}
	out, err := s.a.read(req.GetEpoch(), req.GetKeys())
	resp = &kshakav1.ReadResponse{}
	if resp.StaleConfig, err = staleConfig(err); err != nil {
		return nil, statusErr(err)
	}
	s.a.countStale("Read", resp.StaleConfig)
	for _, o := range out {
		resp.Results = append(resp.Results, &kshakav1.ReadResult{Accepted: wire.BallotToProto(o.Accepted), Value: wire.ValueToProto(o.Value)})
	}
	return resp, nil
}

type adminServer struct {
	kshakav1.UnimplementedAdminServer
	a *Acceptor
}

func (s adminServer) GetConfig(ctx context.Context, _ *kshakav1.GetConfigRequest) (resp *kshakav1.GetConfigResponse, err error) {
	if err := authorized(ctx); err != nil {
		return nil, err
	}
	return &kshakav1.GetConfigResponse{Config: wire.ConfigToProto(s.a.Config()), Incarnation: s.a.incarnation}, nil
}

func (s adminServer) SetConfig(ctx context.Context, req *kshakav1.SetConfigRequest) (resp *kshakav1.SetConfigResponse, err error) {
	if err := authorized(ctx); err != nil {
		return nil, err
	}
	if req.GetConfig() == nil {
		return nil, status.Error(codes.InvalidArgument, "config is missing")
	}
	cfg, err := s.a.SetConfig(wire.ConfigFromProto(req.GetConfig()))
	if err != nil {
		return nil, statusErr(err)
	}
	return &kshakav1.SetConfigResponse{Config: wire.ConfigToProto(cfg)}, nil
}

func (s adminServer) Status(ctx context.Context, _ *kshakav1.StatusRequest) (resp *kshakav1.StatusResponse, err error) {
	if err := authorized(ctx); err != nil {
		return nil, err
	}
	st := s.a.Status()
	return &kshakav1.StatusResponse{
		Incarnation: st.Incarnation,
		Epoch:       st.Config.Epoch,
		Admitted:    st.Admitted,
		Healthy:     st.Healthy,
		KeyCount:    st.KeyCount,
		Reason:      st.Reason,
		Config:      wire.ConfigToProto(st.Config),
	}, nil
}

// defaultPageSize and maxPageSize bound ListKeys pages.
const (
	defaultPageSize = 1000
	maxPageSize     = 10000
)

func (s adminServer) ListKeys(req *kshakav1.ListKeysRequest, stream grpc.ServerStreamingServer[kshakav1.ListKeysResponse]) (err error) {
	if err := authorized(stream.Context()); err != nil {
		return err
	}
	size := int(req.GetPageSize())
	switch {
	case size == 0:
		size = defaultPageSize
	case size > maxPageSize:
		size = maxPageSize
	}
	f := KeyFilter{TombstonesOnly: req.GetTombstonesOnly(), AcceptedBefore: req.GetAcceptedBefore()}
	err = s.a.listKeys(req.GetStartAfter(), req.GetLimit(), size, f, func(keys [][]byte, through []byte) error {
		if err := stream.Context().Err(); err != nil {
			return status.FromContextError(err).Err()
		}
		resp := &kshakav1.ListKeysResponse{Keys: keys}
		if !f.none() {
			resp.ScannedThrough = through
		}
		return stream.Send(resp)
	})
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return err
		}
		return statusErr(err)
	}
	return nil
}

func (s adminServer) Collect(ctx context.Context, req *kshakav1.CollectRequest) (*kshakav1.CollectResponse, error) {
	if err := authorized(ctx); err != nil {
		return nil, err
	}
	s.a.metrics.batchItems.WithLabelValues("Collect").Observe(float64(len(req.GetItems())))
	items := make([]acceptcore.CollectItem, len(req.GetItems()))
	for i, it := range req.GetItems() {
		items[i] = acceptcore.CollectItem{Key: it.GetKey(), Ballot: wire.BallotFromProto(it.GetBallot()), Version: it.GetVersion()}
	}
	out, err := s.a.collect(items)
	if err != nil {
		return nil, statusErr(err)
	}
	resp := &kshakav1.CollectResponse{Results: make([]*kshakav1.CollectResult, len(out))}
	for i, v := range out {
		resp.Results[i] = &kshakav1.CollectResult{Verdict: collectVerdictToProto(v)}
	}
	return resp, nil
}

func collectVerdictToProto(v acceptcore.CollectVerdict) kshakav1.CollectVerdict {
	switch v {
	case acceptcore.CollectRemoved:
		return kshakav1.CollectVerdict_COLLECT_VERDICT_REMOVED
	case acceptcore.CollectAbsent:
		return kshakav1.CollectVerdict_COLLECT_VERDICT_ABSENT
	case acceptcore.CollectChanged:
		return kshakav1.CollectVerdict_COLLECT_VERDICT_CHANGED
	case acceptcore.CollectFloorsNotInstalled:
		return kshakav1.CollectVerdict_COLLECT_VERDICT_FLOORS_NOT_INSTALLED
	}
	return kshakav1.CollectVerdict_COLLECT_VERDICT_UNSPECIFIED
}
