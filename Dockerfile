# syntax=docker/dockerfile:1
# The TTG worker image: `deno task compile` in a builder stage, then the single binary on a
# distroless base with glibc and libgcc (what a deno binary links against: cc-debian12),
# running as the distroless nonroot user. Build it with `deno task image`.

ARG DENO_VERSION=2.9.6

FROM denoland/deno:${DENO_VERSION} AS builder
WORKDIR /src
COPY deno.json deno.lock ./
RUN deno install --frozen
COPY brokers/ brokers/
COPY jobs/ jobs/
COPY workers/ workers/
COPY deploy/ deploy/
COPY tasks/ tasks/
RUN deno task compile

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=dev
ARG GIT_COMMIT=unknown
ARG BUILD_DATE=unknown
LABEL org.opencontainers.image.title="ttg" \
      org.opencontainers.image.description="TTG distributed job runner: the ttg worker, compiled with deno compile" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=builder --chown=65532:65532 /src/dist/ttg /ttg
USER 65532:65532
WORKDIR /home/nonroot
ENTRYPOINT ["/ttg"]
CMD ["worker"]
