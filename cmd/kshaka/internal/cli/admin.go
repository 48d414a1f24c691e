package cli

import (
	"crypto/tls"

	"google.golang.org/grpc/credentials"

	"github.com/kshaka-io/kshaka/internal/adminclient"
)

// dialAdmin connects to the Admin service at addr through adminclient, with
// TLS when tlsCfg is set (nil: plaintext) and the admin token when set. The
// connection is lazy: errors show up on the first call.
func dialAdmin(addr string, tlsCfg *tls.Config, token string) (*adminclient.Conn, error) {
	var creds credentials.TransportCredentials
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg.Clone())
	}
	return adminclient.Dial(addr, creds, token)
}
