package localkube

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// errImage is wrapped by every failure to map an image to a binary; the
// container waits with reason ErrImagePull, like a kubelet whose pull failed.
var errImage = errors.New("image not available")

// splitImage splits "[REGISTRY/]REPO[:TAG][@DIGEST]" into the repository
// (with registry) and tag ("latest" when absent).
func splitImage(image string) (repo, tag string) {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image = image[:i]
	}
	repo, tag = image, "latest"
	if i := strings.LastIndexByte(image, ':'); i > strings.LastIndexByte(image, '/') {
		repo, tag = image[:i], image[i+1:]
	}
	return repo, tag
}

// withoutRegistry drops a leading registry host ("ghcr.io/", "localhost:5000/")
// and Docker Hub's implicit "library/".
func withoutRegistry(repo string) string {
	first, rest, ok := strings.Cut(repo, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		repo = rest
	}
	return strings.TrimPrefix(repo, "library/")
}

// resolveImage returns the binary that runs image.
func resolveImage(rules []ImageRule, binDir, image string) (string, error) {
	repo, tag := splitImage(image)
	var rule *ImageRule
	for i := range rules {
		r := &rules[i]
		if r.Repository == repo || r.Repository == withoutRegistry(repo) || r.Repository == path.Base(repo) {
			rule = r
			break
		}
	}
	if rule == nil {
		return "", fmt.Errorf("%w: no binary is mapped to image repository %q (see the localkube image rules)", errImage, repo)
	}
	bin := rule.Binary
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(binDir, bin)
	}
	var candidates []string
	if tag != "" && tag != "." && tag != ".." && !strings.ContainsAny(tag, `/\`) {
		candidates = append(candidates, filepath.Join(filepath.Dir(bin), tag, filepath.Base(bin)))
	}
	candidates = append(candidates, bin)
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return c, nil
		}
	}
	return "", fmt.Errorf("%w: image %q maps to %s, which does not exist (build it first, e.g. `make build`)",
		errImage, image, strings.Join(candidates, " or "))
}
