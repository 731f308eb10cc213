# Multi-stage build on Debian bookworm: a builder with the -dev packages, a slim runtime.
FROM debian:bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates \
      libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libabsl-dev libyaml-cpp-dev nlohmann-json3-dev libcurl4-openssl-dev libssl-dev \
      prometheus-cpp-dev libsqlite3-dev libpqxx-dev libgtest-dev libgmock-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DELEXIRION_BUILD_TESTS=OFF -DELEXIRION_BUILD_BENCH=OFF \
 && cmake --build /build --target elexirion-server elexirion \
 && strip /build/server/app/elexirion-server /build/client/elexirion

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      ca-certificates libgrpc++1.51 libprotobuf32 libabsl20220623 libyaml-cpp0.7 \
      libcurl4 libsqlite3-0 libpqxx-6.4 libprometheus-cpp-core1.0 libcivetweb1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --create-home --home-dir /var/lib/elexirion elexirion
COPY --from=build /build/server/app/elexirion-server /usr/local/bin/elexirion-server
COPY --from=build /build/client/elexirion /usr/local/bin/elexirion
COPY deploy/config/server.yaml /etc/elexirion/server.yaml
USER 10001:10001
WORKDIR /var/lib/elexirion
ENV ELEXIRION_STORE_SQLITE_PATH=/var/lib/elexirion/data/elexirion.sqlite
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/elexirion-server", "--config", "/etc/elexirion/server.yaml"]
