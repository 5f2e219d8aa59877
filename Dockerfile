# Lablet in a container: `docker build -t lablet .`, or `docker compose up` (docker-compose.yml).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin lablet

FROM debian:bookworm-slim
# The system's CA roots: the KurrentDB client trusts them for TLS (`tlsCAFile` adds others).
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/lablet /usr/local/bin/lablet
ENV LABLET_DATA_DIR=/data \
    LABLET_HTTP_ADDR=0.0.0.0:8080 \
    LABLET_LOG_FORMAT=json
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["lablet"]
CMD ["serve"]
