defmodule Elexirion.TelemetryHandler do
  @moduledoc """
  Sends every pipeline execution to elexirion: the replacement for the design document's
  `Pipeline.DSPyTelemetry` (which stored to a `Pipeline.DSPyDataStore` that never existed).

  It handles `[:pipeline, :execution, :stop]`, builds an `ExecutionRecord` and hands it to
  `Elexirion.TelemetryBuffer`, which ships records in batches. The handler runs inside the
  process that emitted the event, so it only converts the data and casts it: it never waits
  on the network, and it never raises (`:telemetry` detaches a handler that raises).

  pipeline_ex itself emits no `[:pipeline, :execution, *]` events, so the runtime wraps its
  calls to `Pipeline.execute/2` with `span/2`:

      Elexirion.TelemetryHandler.span(
        %{pipeline_name: "code_analysis", input: inputs, program_version: 3},
        fn -> Pipeline.execute(config, inputs: inputs) end
      )

  Event contract (`measurements` / `metadata` of the `:stop` event; the design document's
  names are accepted too):

    * `duration` measurement - native time units, as `:telemetry.span/3` reports it (or
      metadata `duration_ms`);
    * `pipeline_name` (or `pipeline_id`) - required; records without one are skipped;
    * `program_version` - optimized program version applied, 0 or absent for none;
    * `success` (metadata or measurement) - otherwise derived from `result`
      (`{:ok, _}` is a success);
    * `input` (or `inputs`) - the execution's inputs map;
    * `result` (or `output`) - `{:ok, step_results}`, `{:error, reason}`, or a map;
    * `quality_score` - only when the runtime really has one (user feedback, a judge), on the
      0-10 scale. Absent, the record goes without it and the server computes its heuristic:
      the design document's `calculate_quality_score` is not reimplemented here;
    * `execution_id` - optional; when present the `record_id` is derived from it, so the same
      execution reported twice (e.g. after a node restart) is stored once;
    * `metadata` - optional extra map stored with the record.
  """
  require Logger

  alias Elexirion.{Client, TelemetryBuffer}

  @handler_id "elexirion-execution-telemetry"
  @events [[:pipeline, :execution, :stop]]

  @doc """
  Attaches the handler (idempotent). Options: `:buffer` (default `Elexirion.TelemetryBuffer`),
  `:max_string_bytes` (strings in input/output are cut to this size, default 262_144).
  """
  def attach(opts \\ []) do
    config = %{
      buffer: Keyword.get(opts, :buffer, TelemetryBuffer),
      max_string_bytes: Keyword.get(opts, :max_string_bytes, 262_144)
    }

    _ = :telemetry.detach(@handler_id)
    :telemetry.attach_many(@handler_id, @events, &__MODULE__.handle_event/4, config)
  end

  def detach, do: :telemetry.detach(@handler_id)

  @doc """
  Runs `fun` (which returns what `Pipeline.execute/2` returns) inside
  `:telemetry.span([:pipeline, :execution], ...)`, so `:start`, `:stop` (with `duration`
  and the `result`) and `:exception` events are emitted. Returns `fun`'s result.
  """
  def span(metadata, fun) when is_map(metadata) and is_function(fun, 0) do
    :telemetry.span([:pipeline, :execution], metadata, fn ->
      result = fun.()
      {result, Map.put(metadata, :result, result)}
    end)
  end

  @doc false
  def handle_event([:pipeline, :execution, :stop], measurements, metadata, config) do
    case build_record(measurements, metadata, config) do
      {:ok, record} -> TelemetryBuffer.push(config.buffer, record)
      :skip -> :ok
    end
  rescue
    e ->
      Logger.warning(
        "elexirion telemetry: cannot build execution record: " <> Exception.message(e)
      )

      :ok
  end

  @doc """
  Builds the `%Elexirion.V1.ExecutionRecord{}` for one `:stop` event, or `:skip` when the
  event names no pipeline.
  """
  def build_record(measurements, metadata, config \\ %{max_string_bytes: 262_144}) do
    name = metadata[:pipeline_name] || metadata[:pipeline_id]

    if name in [nil, ""] do
      :skip
    else
      result = Map.get(metadata, :result, metadata[:output])
      struct_opts = [max_string_bytes: config[:max_string_bytes]]

      record = %Elexirion.V1.ExecutionRecord{
        pipeline_name: to_string(name),
        program_version: metadata[:program_version] || 0,
        success: success?(measurements, metadata, result),
        duration: duration(measurements, metadata),
        # Unset (nil) unless the runtime measured one: the server then computes it.
        quality_score: quality_score(metadata[:quality_score]),
        input: map_or_nil(metadata[:input] || metadata[:inputs], struct_opts),
        output: output(result, struct_opts),
        time: Client.timestamp(DateTime.utc_now()),
        metadata: map_or_nil(metadata[:metadata], struct_opts),
        record_id: record_id(name, metadata[:execution_id])
      }

      {:ok, record}
    end
  end

  defp success?(measurements, metadata, result) do
    case Map.get(metadata, :success, Map.get(measurements, :success)) do
      b when is_boolean(b) -> b
      _ -> match?({:ok, _}, result)
    end
  end

  defp duration(measurements, metadata) do
    cond do
      is_integer(metadata[:duration_ms]) ->
        Client.duration(metadata[:duration_ms])

      is_integer(measurements[:duration]) ->
        Client.duration(System.convert_time_unit(measurements[:duration], :native, :millisecond))

      true ->
        nil
    end
  end

  defp quality_score(score) when is_number(score) and score >= 0 and score <= 10, do: score / 1
  defp quality_score(_), do: nil

  defp output({:ok, value}, opts), do: wrap(value, opts)

  defp output({:error, reason}, opts),
    do: Client.to_struct(%{"error" => error_text(reason)}, opts)

  defp output(nil, _opts), do: nil
  defp output(value, opts), do: wrap(value, opts)

  # A Struct must be an object: non-map outputs (e.g. a final text) go under "result".
  defp wrap(value, opts) when is_map(value), do: Client.to_struct(value, opts)
  defp wrap(value, opts), do: Client.to_struct(%{"result" => value}, opts)

  defp map_or_nil(value, opts) when is_map(value), do: Client.to_struct(value, opts)
  defp map_or_nil(_value, _opts), do: nil

  defp error_text(reason) when is_binary(reason), do: reason
  defp error_text(reason), do: inspect(reason)

  # Deterministic when the runtime names the execution; random otherwise. Either way the id is
  # fixed here, once, and travels with the record through every retry.
  defp record_id(_name, nil), do: Client.new_id()

  defp record_id(name, execution_id),
    do: Client.derive_id({:execution, to_string(name), execution_id})
end
