defmodule ElexirionClient.MixProject do
  use Mix.Project

  # Example application showing how the pipeline_ex runtime talks to elexirion over gRPC.
  # The modules under lib/elexirion/v1/ and lib/google/ are generated from ../../proto (see
  # README.md); they are not checked in.
  def project do
    [
      app: :elexirion_client,
      version: "0.1.0",
      elixir: "~> 1.12",
      start_permanent: Mix.env() == :prod,
      deps: deps()
    ]
  end

  def application do
    [
      extra_applications: [:logger, :crypto, :ssl, :public_key],
      mod: {Elexirion.Application, []}
    ]
  end

  defp deps do
    [
      # gRPC client (Gun HTTP/2 adapter by default). 0.7 - 0.9 use protobuf < 0.14, which is what
      # google_protos below needs; grpc >= 0.10 requires protobuf ~> 0.14 and is therefore not
      # selected by this file (see README.md, "Newer grpc/protobuf").
      {:grpc, "~> 0.7"},
      # Runtime for the generated message modules and the protoc-gen-elixir plugin.
      {:protobuf, "~> 0.12.0 or ~> 0.13.0"},
      # google.protobuf.Struct / Value / ListValue / Timestamp / Duration modules, which our
      # protos import. protobuf >= 0.14 bundles these itself and then this dependency must go.
      {:google_protos, "~> 0.3"},
      # :telemetry.attach_many/4 for Elexirion.TelemetryHandler.
      {:telemetry, "~> 1.0"},
      # Only for Elexirion.Client.decode_jsonl/1 (ExportExamples returns JSON Lines).
      {:jason, "~> 1.4"}
    ]
  end
end
