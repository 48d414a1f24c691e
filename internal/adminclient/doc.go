// Package adminclient dials the Admin service of a Kshaka acceptor: the one
// dialer the proposer (to learn the configuration), the kshaka CLI, the
// acceptortest clusters and the operator share, so that they authenticate
// the same way (docs/design.md §9.1).
//
// Contract:
//   - Dial takes the transport credentials as they are: TLS, with a client
//     certificate for mutual TLS (whose role the acceptor checks: admin for
//     SetConfig, Status and ListKeys, client for GetConfig), or nil for
//     plaintext.
//   - A non-empty admin token is sent with every call as the metadata
//     `authorization: Bearer <token>`, through grpc.PerRPCCredentials. It
//     requires transport security, except to a loopback address (kshaka
//     local without --tls): Dial refuses to send a token in plaintext
//     anywhere else.
//   - The connection is lazy: errors show up on the first call.
package adminclient
