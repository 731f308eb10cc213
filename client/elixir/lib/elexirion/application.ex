defmodule Elexirion.Application do
  @moduledoc """
  Supervision tree of the example app: the gRPC connection, a task supervisor for the
  telemetry buffer's sends, the buffer itself, and the `[:pipeline, :execution, :stop]`
  handler.

  Configuration (all optional, e.g. in `config/runtime.exs`):

      config :elexirion_client, Elexirion.Client,
        endpoint: System.get_env("ELEXIRION_ADDR", "localhost:50051"),
        token: System.get_env("ELEXIRION_TOKEN"),
        tls: false

      config :elexirion_client, Elexirion.TelemetryBuffer,
        max_batch: 100, flush_interval: 1_000, max_queue: 10_000

      config :elexirion_client, Elexirion.TelemetryHandler, attach: true
  """
  use Application

  @impl true
  def start(_type, _args) do
    client_opts = Application.get_env(:elexirion_client, Elexirion.Client, [])
    buffer_opts = Application.get_env(:elexirion_client, Elexirion.TelemetryBuffer, [])
    handler_opts = Application.get_env(:elexirion_client, Elexirion.TelemetryHandler, [])

    children = [
      {Elexirion.Client, client_opts},
      {Task.Supervisor, name: Elexirion.TaskSupervisor},
      {Elexirion.TelemetryBuffer, buffer_opts}
    ]

    with {:ok, pid} <-
           Supervisor.start_link(children, strategy: :rest_for_one, name: Elexirion.Supervisor) do
      if Keyword.get(handler_opts, :attach, true) do
        :ok = Elexirion.TelemetryHandler.attach(handler_opts)
      end

      {:ok, pid}
    end
  end

  @impl true
  def prep_stop(state) do
    # Stop feeding the buffer before it drains on shutdown.
    Elexirion.TelemetryHandler.detach()
    state
  end
end
