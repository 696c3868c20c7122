# syntax=docker/dockerfile:1
# Build: a static binary, no cgo.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/eventflow ./cmd/eventflow

# Run: distroless static, as a non-root user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/eventflow /usr/local/bin/eventflow
USER nonroot:nonroot
EXPOSE 8080 9091
# distroless has no shell or curl; the binary checks its own readiness.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/eventflow", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/eventflow"]
CMD ["serve"]
