# Images of Kshaka's binaries. Build one with its target:
#
#   docker build --target acceptor -t ghcr.io/kshaka-io/kshaka-acceptor:v0.1.0 .
#   docker build --target operator -t ghcr.io/kshaka-io/kshaka-operator:v0.1.0 .
#
# Both run as the distroless nonroot user (UID 65532), which the operator's
# pod security context expects.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/ ./cmd/kshaka-acceptor ./cmd/kshaka-operator ./cmd/kshaka

FROM gcr.io/distroless/static:nonroot AS acceptor
COPY --from=build /out/kshaka-acceptor /kshaka-acceptor
COPY --from=build /out/kshaka /kshaka
USER 65532:65532
ENTRYPOINT ["/kshaka-acceptor"]

FROM gcr.io/distroless/static:nonroot AS operator
COPY --from=build /out/kshaka-operator /kshaka-operator
USER 65532:65532
ENTRYPOINT ["/kshaka-operator"]
