defmodule Elexirion.Client do
  @moduledoc """
  gRPC client for the elexirion v1 API, for the pipeline_ex runtime.

  `Elexirion.Client` is a small process that owns one HTTP/2 connection
  (`GRPC.Stub.connect/2`, Gun adapter, keepalive pings the server accepts) and reconnects with
  backoff when it is lost. It publishes the channel in `:persistent_term`, so the RPC functions
  below run in the *caller's* process: many callers share the connection and none of them
  waits on this process.

  Every RPC function:

    * sends the bearer token (`authorization: Bearer <token>`, from `ELEXIRION_TOKEN` unless
      configured) and a deadline (`:timeout`, milliseconds, covering all attempts);
    * retries `UNAVAILABLE` and `RESOURCE_EXHAUSTED` ("server busy", backlog full) with
      exponential backoff and full jitter while the deadline allows. Requests that are safe to
      repeat are also retried after a dropped connection. Retries resend the same request, so
      the ids that make them idempotent (`record_id`, `request_id`) are fixed before the first
      attempt;
    * returns `{:ok, response}` or `{:error, %GRPC.RPCError{}}` (`status` is the integer gRPC
      code, see `GRPC.Status`).

  Common options: `:client` (the name given to `start_link/1`, default `Elexirion.Client`),
  `:timeout` (ms), `:retry` (`false`, or `[max_attempts: 5, base_ms: 100, max_ms: 5_000]`),
  `:metadata` (extra request headers).

  Maps are converted to and from `google.protobuf.Struct` by `to_struct/2` and
  `from_struct/1`.
  """
  use GenServer
  require Logger

  alias Elexirion.V1, as: Pb
  alias Google.Protobuf, as: Gp

  # gRPC status codes (GRPC.Status functions cannot be used in guards).
  @cancelled 1
  @unknown 2
  @deadline_exceeded 4
  @resource_exhausted 8
  @internal 13
  @unavailable 14

  @default_timeout 30_000
  @execute_timeout 300_000
  @default_retry [max_attempts: 5, base_ms: 100, max_ms: 5_000]
  # The server accepts pings every 10 s (grpc.min_client_ping_interval); stay well above it.
  @min_keepalive 10_000

  defmodule State do
    @moduledoc false
    @derive {Inspect, except: [:token]}
    defstruct [
      :name,
      :endpoint,
      :token,
      :tls,
      :keepalive,
      :connect_timeout,
      :channel,
      :monitor,
      connected?: false,
      backoff: 0
    ]
  end

  ## Connection process

  @doc """
  Starts the connection process.

  Options:

    * `:name` - registered name, default `Elexirion.Client`;
    * `:endpoint` - `"host:port"`, default `$ELEXIRION_ADDR` or `"localhost:50051"`;
    * `:token` - bearer token, default `$ELEXIRION_TOKEN` (nothing is sent when unset);
    * `:tls` - `false` (default), `true` (verify the server against the OS trust store), or a
      keyword list of `:ssl` client options, e.g.
      `[cacertfile: "ca.pem", certfile: "client.pem", keyfile: "client-key.pem"]` for mTLS;
    * `:keepalive` - HTTP/2 PING interval in ms, default 30_000, at least 10_000;
    * `:connect_timeout` - ms, default 5_000.
  """
  def start_link(opts \\ []) do
    name = Keyword.get(opts, :name, __MODULE__)
    GenServer.start_link(__MODULE__, Keyword.put(opts, :name, name), name: name)
  end

  def child_spec(opts) do
    %{
      id: Keyword.get(opts, :name, __MODULE__),
      start: {__MODULE__, :start_link, [opts]},
      type: :worker
    }
  end

  @doc "True while the HTTP/2 connection is up."
  def connected?(client \\ __MODULE__) do
    match?(%{connected?: true}, :persistent_term.get({__MODULE__, client}, nil))
  end

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)
    keepalive = Keyword.get(opts, :keepalive, 30_000)

    if keepalive < @min_keepalive do
      raise ArgumentError,
            ":keepalive must be at least #{@min_keepalive} ms (the server's minimum ping interval)"
    end

    state = %State{
      name: Keyword.fetch!(opts, :name),
      endpoint:
        Keyword.get_lazy(opts, :endpoint, fn ->
          System.get_env("ELEXIRION_ADDR", "localhost:50051")
        end),
      token: Keyword.get_lazy(opts, :token, fn -> System.get_env("ELEXIRION_TOKEN") end),
      tls: Keyword.get(opts, :tls, false),
      keepalive: keepalive,
      connect_timeout: Keyword.get(opts, :connect_timeout, 5_000)
    }

    {:ok, state, {:continue, :connect}}
  end

  @impl true
  def handle_continue(:connect, state), do: {:noreply, connect(state)}

  @impl true
  def handle_info(:connect, state), do: {:noreply, connect(state)}

  # The Gun connection process gave up (it retries on its own first) or crashed.
  def handle_info({:DOWN, ref, :process, _pid, reason}, %State{monitor: ref} = state) do
    Logger.warning("elexirion: connection to #{state.endpoint} lost: #{inspect(reason)}")
    unpublish(state)
    {:noreply, schedule_reconnect(%State{state | channel: nil, monitor: nil, connected?: false})}
  end

  # Gun reports reconnects to the owner of the connection, which is this process.
  def handle_info({:gun_up, _pid, _protocol}, state) do
    state = %State{state | connected?: true}
    publish(state)
    {:noreply, state}
  end

  def handle_info({:gun_down, _pid, _protocol, reason, _killed}, state) do
    Logger.info("elexirion: connection down (#{inspect(reason)}), Gun is reconnecting")
    state = %State{state | connected?: false}
    publish(state)
    {:noreply, state}
  end

  def handle_info(msg, state) do
    Logger.debug("elexirion: ignoring #{inspect(msg)}")
    {:noreply, state}
  end

  @impl true
  def terminate(_reason, state) do
    unpublish(state)
    if state.channel, do: GRPC.Stub.disconnect(state.channel)
    :ok
  end

  defp connect(state) do
    result =
      try do
        GRPC.Stub.connect(state.endpoint, connect_opts(state))
      rescue
        e -> {:error, Exception.message(e)}
      end

    case result do
      {:ok, channel} ->
        monitor =
          case channel.adapter_payload do
            %{conn_pid: pid} when is_pid(pid) -> Process.monitor(pid)
            _ -> nil
          end

        state = %State{state | channel: channel, monitor: monitor, connected?: true, backoff: 0}
        publish(state)
        Logger.info("elexirion: connected to #{state.endpoint}")
        state

      {:error, reason} ->
        Logger.warning("elexirion: cannot connect to #{state.endpoint}: #{inspect(reason)}")
        schedule_reconnect(state)
    end
  end

  defp connect_opts(state) do
    # Gun options: PING every `keepalive` ms, also when idle (the server permits it), so a dead
    # peer is noticed between calls; don't wait for the server's SETTINGS ack.
    adapter_opts = [
      connect_timeout: state.connect_timeout,
      http2_opts: %{keepalive: state.keepalive, settings_timeout: :infinity}
    ]

    case tls_options(state.tls) do
      nil -> [adapter_opts: adapter_opts]
      ssl -> [adapter_opts: adapter_opts, cred: GRPC.Credential.new(ssl: ssl)]
    end
  end

  defp tls_options(false), do: nil
  defp tls_options(nil), do: nil

  defp tls_options(true) do
    [
      verify: :verify_peer,
      cacerts: :public_key.cacerts_get(),
      customize_hostname_check: [match_fun: :public_key.pkix_verify_hostname_match_fun(:https)]
    ]
  end

  defp tls_options(ssl) when is_list(ssl) do
    Keyword.merge(
      [
        verify: :verify_peer,
        customize_hostname_check: [match_fun: :public_key.pkix_verify_hostname_match_fun(:https)]
      ],
      ssl
    )
  end

  defp schedule_reconnect(state) do
    attempt = state.backoff + 1
    delay = backoff_delay(attempt, 500, 30_000)
    Process.send_after(self(), :connect, delay)
    %State{state | backoff: attempt}
  end

  defp publish(%State{channel: nil}), do: :ok

  defp publish(state) do
    metadata =
      case state.token do
        token when is_binary(token) and token != "" -> %{"authorization" => "Bearer " <> token}
        _ -> %{}
      end

    :persistent_term.put({__MODULE__, state.name}, %{
      channel: state.channel,
      metadata: metadata,
      connected?: state.connected?
    })
  end

  defp unpublish(state), do: :persistent_term.erase({__MODULE__, state.name})

  ## TelemetryService

  @doc """
  `TelemetryService.RecordExecution`: records one execution. `record` is an
  `%Elexirion.V1.ExecutionRecord{}` or a map accepted by `execution_record/1` (which assigns a
  `record_id` when there is none, so that retries are deduplicated by the server).
  """
  def record_execution(record, opts \\ []) do
    request = %Pb.RecordExecutionRequest{record: execution_record(record)}
    unary(&Pb.TelemetryService.Stub.record_execution/3, request, opts, idempotent: true)
  end

  @doc """
  `TelemetryService.RecordExecutions`: records 1..1000 executions. A malformed record is
  rejected alone: see `RecordExecutionsResponse.rejected` (`index` into `records`, `reason`).
  """
  def record_executions(records, opts \\ []) when is_list(records) do
    count = length(records)

    if count < 1 or count > 1000 do
      {:error, GRPC.RPCError.exception(3, "records: 1..1000 records per call, got #{count}")}
    else
      request = %Pb.RecordExecutionsRequest{records: Enum.map(records, &execution_record/1)}
      unary(&Pb.TelemetryService.Stub.record_executions/3, request, opts, idempotent: true)
    end
  end

  @doc """
  `TelemetryService.StreamExecutions`: client-streams any number of records and returns one
  `RecordExecutionsResponse` at the end (rejection indexes are in stream order). A list is
  resent whole on a retryable failure (same record ids); a lazy stream is sent once.
  """
  def stream_executions(records, opts \\ []) do
    retry? = is_list(records)

    records =
      if retry?,
        do: Enum.map(records, &execution_record/1),
        else: Stream.map(records, &execution_record/1)

    attempt = fn conn, timeout ->
      case Pb.TelemetryService.Stub.stream_executions(conn.channel,
             metadata: request_metadata(conn, opts),
             timeout: timeout
           ) do
        {:error, _} = error ->
          error

        stream ->
          records
          |> Enum.reduce(stream, fn record, acc -> GRPC.Stub.send_request(acc, record) end)
          |> GRPC.Stub.end_stream()
          |> GRPC.Stub.recv(timeout: timeout)
      end
    end

    opts = if retry?, do: opts, else: Keyword.put(opts, :retry, false)
    with_retry(attempt, opts, idempotent: true)
  end

  @doc """
  `TelemetryService.GetUsageStats` for one pipeline. `:window` is the window length in
  seconds (server default 24 h).
  """
  def get_usage_stats(pipeline_name, opts \\ []) do
    request = %Pb.GetUsageStatsRequest{
      pipeline_name: pipeline_name,
      window: opts[:window] && duration(opts[:window] * 1000)
    }

    unary(&Pb.TelemetryService.Stub.get_usage_stats/3, request, opts, idempotent: true)
  end

  ## OptimizerService

  @doc """
  `OptimizerService.OptimizeModule`: submits a durable job and returns the `%Job{}` at once
  (state `JOB_STATE_QUEUED`). A `request_id` is generated when the request has none; it is the
  same on every retry, so a retried submit returns the original job instead of a second one.
  Pass a deterministic one (e.g. `derive_id(["nightly", program, Date.utc_today()])`) to make
  a scheduled submit idempotent across restarts too.
  """
  def optimize_module(%Pb.OptimizeModuleRequest{} = request, opts \\ []) do
    request =
      if request.request_id in [nil, ""], do: %{request | request_id: new_id()}, else: request

    unary(&Pb.OptimizerService.Stub.optimize_module/3, request, opts, idempotent: true)
  end

  @doc "`OptimizerService.GetJob`."
  def get_job(id, opts \\ []) do
    unary(&Pb.OptimizerService.Stub.get_job/3, %Pb.GetJobRequest{id: id}, opts, idempotent: true)
  end

  @doc """
  `OptimizerService.CancelJob`. A queued job never starts; a running one stops within a
  second and keeps its best program so far. `FAILED_PRECONDITION` (9) when the job had
  already ended, which a retried cancel may also see.
  """
  def cancel_job(id, opts \\ []) do
    unary(&Pb.OptimizerService.Stub.cancel_job/3, %Pb.CancelJobRequest{id: id}, opts,
      idempotent: true
    )
  end

  @doc "`OptimizerService.ListJobs`; `:states` (list of `JobState` atoms), `:program_name`."
  def list_jobs(opts \\ []) do
    request = %Pb.ListJobsRequest{
      states: Keyword.get(opts, :states, []),
      program_name: Keyword.get(opts, :program_name, ""),
      page_size: Keyword.get(opts, :page_size, 0),
      page_token: Keyword.get(opts, :page_token, "")
    }

    unary(&Pb.OptimizerService.Stub.list_jobs/3, request, opts, idempotent: true)
  end

  @doc """
  `OptimizerService.StreamProgress`: one server stream of `%ProgressEvent{}` after `after_seq`
  (0 replays everything). Returns `{:ok, enumerable}` whose elements are `{:ok, event}` or
  `{:error, %GRPC.RPCError{}}`. The stream has a deadline (`:timeout`, default 10 minutes);
  `Elexirion.Progress` reconnects from the last `seq` when it ends early.
  """
  def stream_progress(job_id, after_seq \\ 0, opts \\ []) do
    request = %Pb.StreamProgressRequest{job_id: job_id, after_seq: after_seq}
    opts = Keyword.put_new(opts, :timeout, 600_000)
    unary(&Pb.OptimizerService.Stub.stream_progress/3, request, opts, idempotent: true)
  end

  ## PipelineService

  @doc """
  `PipelineService.RegisterPipeline`: registers (or re-registers, bumping `revision`) a
  pipeline_ex workflow under `name` (`[a-z0-9_-]{1,64}`).
  """
  def register_pipeline(name, yaml, opts \\ []) do
    request = %Pb.RegisterPipelineRequest{pipeline: %Pb.Pipeline{name: name, yaml: yaml}}
    unary(&Pb.PipelineService.Stub.register_pipeline/3, request, opts, idempotent: true)
  end

  @doc """
  `PipelineService.ExecutePipeline`: runs a pipeline on one input.

    * `pipeline` - `{:name, "code_analysis"}` (registered) or `{:yaml, yaml}` (inline);
    * `inputs` - a map, the values of `{{inputs.x}}`;
    * `:program` - apply an optimized program: `"name"` (its `production` version, falling
      back to `latest`), `{"name", 3}` (version 3), `{"name", "latest"}` or
      `{"name", "production"}`;
    * `:budget` - `[max_llm_calls: 10, max_usd: 0.5, max_duration: 60_000]`;
    * `:lm` - `[provider: "anthropic", model: "haiku", temperature: 0.0, max_tokens: 1024]`;
    * `:include_prompts`, `:no_cache` - booleans;
    * `:timeout` - default 300_000 ms (the server stops the run at the deadline).

  A pipeline that ran and failed is `{:ok, %{success: false, error: reason}}`. Only refusals
  before any work (`UNAVAILABLE`, `RESOURCE_EXHAUSTED` "server busy") are retried: a run is
  not repeated after a dropped connection, since it may have spent provider calls.
  """
  def execute_pipeline(pipeline, inputs \\ %{}, opts \\ []) do
    request = %Pb.ExecutePipelineRequest{
      pipeline: pipeline_ref(pipeline),
      inputs: to_struct(inputs),
      program: opts[:program] && program_ref(opts[:program]),
      budget: opts[:budget] && budget(opts[:budget]),
      lm: opts[:lm] && lm_spec(opts[:lm]),
      include_prompts: Keyword.get(opts, :include_prompts, false),
      no_cache: Keyword.get(opts, :no_cache, false)
    }

    opts = Keyword.put_new(opts, :timeout, @execute_timeout)
    unary(&Pb.PipelineService.Stub.execute_pipeline/3, request, opts, idempotent: false)
  end

  ## ProgramService

  @doc """
  `ProgramService.GetProgram`. `selector` is a version number, `"production"` (default) or
  `"latest"`. The `%Program{}` carries `optimized_yaml` (plain pipeline_ex YAML runnable
  without this service) and `dspy_json`.
  """
  def get_program(name, selector \\ "production", opts \\ []) do
    request = %Pb.GetProgramRequest{program: program_ref({name, selector})}
    unary(&Pb.ProgramService.Stub.get_program/3, request, opts, idempotent: true)
  end

  @doc "`ProgramService.PromoteProgram`: makes `version` production (an older one: rollback)."
  def promote_program(name, version, opts \\ []) when is_integer(version) do
    request = %Pb.PromoteProgramRequest{name: name, version: version}
    unary(&Pb.ProgramService.Stub.promote_program/3, request, opts, idempotent: true)
  end

  ## DatasetService

  @doc """
  `DatasetService.AddExamples`. Each example is an `%Example{}` or a map with `input`,
  `expected_output` and `metadata` maps (and an optional 8-character `id`). Duplicates by
  content hash are skipped and counted, so a retried call adds nothing twice.
  """
  def add_examples(dataset, examples, opts \\ []) when is_list(examples) do
    request = %Pb.AddExamplesRequest{dataset: dataset, examples: Enum.map(examples, &example/1)}
    unary(&Pb.DatasetService.Stub.add_examples/3, request, opts, idempotent: true)
  end

  @doc """
  `DatasetService.ExportExamples`: the dataset as JSON Lines in `ExportExamplesResponse.jsonl`
  (see `decode_jsonl/1`).
  """
  def export_examples(dataset, opts \\ []) do
    request = %Pb.ExportExamplesRequest{dataset: dataset}
    opts = Keyword.put_new(opts, :timeout, 120_000)
    unary(&Pb.DatasetService.Stub.export_examples/3, request, opts, idempotent: true)
  end

  @doc "Decodes JSON Lines (as returned by ExportExamples) into a list of maps."
  def decode_jsonl(jsonl) do
    jsonl
    |> String.split("\n", trim: true)
    |> Enum.map(&Jason.decode!/1)
  end

  ## Calls, deadlines, retries

  defp unary(stub_fun, request, opts, policy) do
    attempt = fn conn, timeout ->
      stub_fun.(conn.channel, request, metadata: request_metadata(conn, opts), timeout: timeout)
    end

    with_retry(attempt, opts, policy)
  end

  defp request_metadata(conn, opts) do
    Map.merge(Map.new(Keyword.get(opts, :metadata, %{})), conn.metadata)
  end

  # Runs `attempt.(conn, remaining_ms)` until it succeeds, fails for good, runs out of attempts
  # or the overall deadline passes.
  defp with_retry(attempt, opts, policy) do
    client = Keyword.get(opts, :client, __MODULE__)
    timeout = Keyword.get(opts, :timeout, @default_timeout)
    deadline = System.monotonic_time(:millisecond) + timeout

    retry =
      case Keyword.get(opts, :retry, []) do
        false -> [max_attempts: 1]
        custom -> Keyword.merge(@default_retry, custom)
      end

    do_retry(attempt, client, deadline, retry, policy, 1)
  end

  defp do_retry(attempt, client, deadline, retry, policy, n) do
    remaining = deadline - System.monotonic_time(:millisecond)

    result =
      case :persistent_term.get({__MODULE__, client}, nil) do
        nil -> {:error, GRPC.RPCError.exception(@unavailable, "elexirion: not connected")}
        _conn when remaining <= 0 -> {:error, GRPC.RPCError.exception(@deadline_exceeded, "")}
        conn -> safe_call(attempt, conn, remaining)
      end

    with {:error, %GRPC.RPCError{} = error} <- result,
         true <- n < retry[:max_attempts] and retryable?(error, policy),
         delay = backoff_delay(n, retry[:base_ms], retry[:max_ms]),
         true <- System.monotonic_time(:millisecond) + delay < deadline do
      Process.sleep(delay)
      do_retry(attempt, client, deadline, retry, policy, n + 1)
    else
      _ -> result
    end
  end

  defp safe_call(attempt, conn, remaining) do
    attempt.(conn, remaining)
  rescue
    e in Protobuf.EncodeError ->
      {:error, GRPC.RPCError.exception(3, "cannot encode request: " <> Exception.message(e))}
  catch
    :exit, reason ->
      {:error, GRPC.RPCError.exception(@unavailable, "connection exited: #{inspect(reason)}")}
  end

  @doc """
  Whether an error is worth retrying. `UNAVAILABLE` and `RESOURCE_EXHAUSTED` always are,
  except `RESOURCE_EXHAUSTED` for an oversized message or an exhausted budget or quota, which
  a retry cannot fix. With `idempotent: true`, a connection that dropped mid-call is too
  (the Gun adapter reports it as `UNKNOWN`/`INTERNAL`, not `UNAVAILABLE`).
  """
  def retryable?(error, policy \\ [])

  def retryable?(%GRPC.RPCError{status: @unavailable}, _policy), do: true

  def retryable?(%GRPC.RPCError{status: @resource_exhausted, message: message}, _policy),
    do: not permanent_exhaustion?(message)

  def retryable?(%GRPC.RPCError{} = error, policy),
    do: Keyword.get(policy, :idempotent, false) and transport_error?(error)

  def retryable?(_other, _policy), do: false

  @doc "True for `RESOURCE_EXHAUSTED` caused by a message over the size limit."
  def too_large?(%GRPC.RPCError{status: @resource_exhausted, message: message}),
    do: (message || "") =~ ~r/larger than|too large|message size/i

  def too_large?(_), do: false

  defp permanent_exhaustion?(message),
    do: (message || "") =~ ~r/larger than|too large|message size|budget|quota/i

  @doc false
  # Gun's connection-level failures surface as UNKNOWN/INTERNAL with the Erlang reason inlined.
  def transport_error?(%GRPC.RPCError{status: status, message: message})
      when status in [@unknown, @internal, @cancelled] do
    (message || "") =~
      ~r/^(:down|:stream_error|:connection_error|:closed|unexpected message.*:closed)/
  end

  def transport_error?(_), do: false

  @doc false
  # Exponential backoff with full jitter: uniform in [1, min(max, base * 2^(attempt-1))].
  def backoff_delay(attempt, base_ms, max_ms) do
    ceiling = min(max_ms, base_ms * Integer.pow(2, min(attempt - 1, 20)))
    :rand.uniform(max(ceiling, 1))
  end

  ## Ids

  @doc "A random 128-bit id (32 hex characters), e.g. for `record_id` or `request_id`."
  def new_id, do: Base.encode16(:crypto.strong_rand_bytes(16), case: :lower)

  @doc """
  A deterministic id (32 hex characters) from any term: the same parts give the same id, so
  a record or job submitted again after a restart is still deduplicated by the server.
  """
  def derive_id(parts),
    do:
      :crypto.hash(:sha256, :erlang.term_to_binary(parts))
      |> binary_part(0, 16)
      |> Base.encode16(case: :lower)

  ## Message builders

  @doc """
  Builds an `%ExecutionRecord{}` from a map with the keys `pipeline_name`, `program_version`,
  `success`, `duration` (ms), `quality_score` (0-10; leave it out or `nil` and the server
  computes it), `input`, `output`, `metadata` (maps), `time` (`DateTime`) and `record_id`.
  A `record_id` is generated when missing. A struct passes through (also getting a
  `record_id` when it has none).
  """
  def execution_record(%Pb.ExecutionRecord{record_id: id} = record) when id in [nil, ""],
    do: %{record | record_id: new_id()}

  def execution_record(%Pb.ExecutionRecord{} = record), do: record

  def execution_record(map) when is_map(map) do
    get = fn key -> Map.get(map, key, Map.get(map, Atom.to_string(key))) end

    %Pb.ExecutionRecord{
      pipeline_name: to_string(get.(:pipeline_name) || ""),
      program_version: get.(:program_version) || 0,
      success: get.(:success) == true,
      duration: get.(:duration) && duration(get.(:duration)),
      quality_score: get.(:quality_score) && get.(:quality_score) / 1,
      input: get.(:input) && to_struct(get.(:input)),
      output: get.(:output) && to_struct(get.(:output)),
      time: get.(:time) && timestamp(get.(:time)),
      metadata: get.(:metadata) && to_struct(get.(:metadata)),
      record_id: get.(:record_id) || new_id()
    }
  end

  @doc "`{:name, n}`, `{:yaml, y}` or a `%PipelineRef{}` to a `%PipelineRef{}`."
  def pipeline_ref(%Pb.PipelineRef{} = ref), do: ref

  def pipeline_ref({kind, value}) when kind in [:name, :yaml],
    do: %Pb.PipelineRef{source: {kind, value}}

  @doc ~S'`"name"`, `{"name", version}` or `{"name", "latest" | "production"}` to a `%ProgramRef{}`.'
  def program_ref(%Pb.ProgramRef{} = ref), do: ref
  def program_ref(name) when is_binary(name), do: %Pb.ProgramRef{name: name}

  def program_ref({name, version}) when is_integer(version),
    do: %Pb.ProgramRef{name: name, selector: {:version, version}}

  def program_ref({name, label}) when label in ["latest", "production"],
    do: %Pb.ProgramRef{name: name, selector: {:label, label}}

  @doc "A keyword list or map to a `%Budget{}` (`max_duration` in ms)."
  def budget(%Pb.Budget{} = budget), do: budget

  def budget(opts) do
    opts = Map.new(opts)

    %Pb.Budget{
      max_llm_calls: Map.get(opts, :max_llm_calls, 0),
      max_usd: Map.get(opts, :max_usd, 0.0) / 1,
      max_duration: opts[:max_duration] && duration(opts[:max_duration])
    }
  end

  @doc "A keyword list or map to an `%LmSpec{}`."
  def lm_spec(%Pb.LmSpec{} = lm), do: lm

  def lm_spec(opts) do
    opts = Map.new(opts)

    %Pb.LmSpec{
      provider: Map.get(opts, :provider, ""),
      model: Map.get(opts, :model, ""),
      temperature: opts[:temperature] && opts[:temperature] / 1,
      max_tokens: opts[:max_tokens]
    }
  end

  @doc "A map with `input`, `expected_output`, `metadata` (and optional `id`) to an `%Example{}`."
  def example(%Pb.Example{} = example), do: example

  def example(map) when is_map(map) do
    get = fn key -> Map.get(map, key, Map.get(map, Atom.to_string(key))) end

    %Pb.Example{
      id: get.(:id) || "",
      input: to_struct(get.(:input) || %{}),
      expected_output: get.(:expected_output) && to_struct(get.(:expected_output)),
      metadata: get.(:metadata) && to_struct(get.(:metadata))
    }
  end

  @doc "Milliseconds to a `%Google.Protobuf.Duration{}`."
  def duration(%Gp.Duration{} = d), do: d

  def duration(ms) when is_integer(ms),
    do: %Gp.Duration{seconds: div(ms, 1000), nanos: rem(ms, 1000) * 1_000_000}

  def duration(ms) when is_float(ms), do: duration(round(ms))

  @doc "A `DateTime` to a `%Google.Protobuf.Timestamp{}`."
  def timestamp(%Gp.Timestamp{} = t), do: t

  def timestamp(%DateTime{} = dt) do
    us = DateTime.to_unix(dt, :microsecond)

    %Gp.Timestamp{
      seconds: Integer.floor_div(us, 1_000_000),
      nanos: Integer.mod(us, 1_000_000) * 1000
    }
  end

  @doc "A `%Google.Protobuf.Timestamp{}` (or nil) to a `DateTime` (or nil)."
  def from_timestamp(nil), do: nil

  def from_timestamp(%Gp.Timestamp{seconds: s, nanos: n}),
    do: DateTime.from_unix!(s * 1_000_000 + div(n, 1000), :microsecond)

  ## google.protobuf.Struct <-> map

  @doc """
  Converts a map to a `%Google.Protobuf.Struct{}` (the JSON object model).

  Keys become strings (atoms and numbers via `to_string/1`). Values: `nil` is null, booleans,
  numbers (as doubles: integers beyond 2^53 lose precision), UTF-8 strings, atoms (as
  strings), lists and tuples (as lists; pipeline_ex results hold `{:ok, resp}` tuples), maps,
  `DateTime`/`NaiveDateTime`/`Date`/`Time` (ISO 8601), other structs (`to_string/1` when they
  implement `String.Chars`, otherwise their fields). Binaries that are not UTF-8 are sent as
  base64; pids, references and functions as `inspect/1` text.

  Option `:max_string_bytes` truncates longer strings (on a UTF-8 boundary).
  """
  def to_struct(map, opts \\ [])
  def to_struct(%Gp.Struct{} = struct, _opts), do: struct

  def to_struct(map, opts) when is_map(map) and not is_struct(map) do
    %Gp.Struct{fields: Map.new(map, fn {k, v} -> {key_string(k), to_value(v, opts)} end)}
  end

  def to_struct(other, opts) when is_struct(other), do: to_struct(Map.from_struct(other), opts)

  @doc "Converts one Elixir term to a `%Google.Protobuf.Value{}` (see `to_struct/2`)."
  def to_value(term, opts \\ [])
  def to_value(nil, _), do: %Gp.Value{kind: {:null_value, :NULL_VALUE}}
  def to_value(b, _) when is_boolean(b), do: %Gp.Value{kind: {:bool_value, b}}
  def to_value(n, _) when is_number(n), do: %Gp.Value{kind: {:number_value, n / 1}}

  def to_value(s, opts) when is_binary(s) do
    s = if String.valid?(s), do: s, else: Base.encode64(s)
    %Gp.Value{kind: {:string_value, truncate(s, opts[:max_string_bytes])}}
  end

  def to_value(a, _) when is_atom(a), do: %Gp.Value{kind: {:string_value, Atom.to_string(a)}}

  def to_value(l, opts) when is_list(l),
    do: %Gp.Value{kind: {:list_value, %Gp.ListValue{values: Enum.map(l, &to_value(&1, opts))}}}

  def to_value(t, opts) when is_tuple(t), do: to_value(Tuple.to_list(t), opts)

  def to_value(%module{} = dt, _) when module in [DateTime, NaiveDateTime, Date, Time],
    do: %Gp.Value{kind: {:string_value, module.to_iso8601(dt)}}

  def to_value(%Gp.Struct{} = s, _), do: %Gp.Value{kind: {:struct_value, s}}
  def to_value(%Gp.Value{} = v, _), do: v

  def to_value(struct, opts) when is_struct(struct) do
    if String.Chars.impl_for(struct),
      do: to_value(to_string(struct), opts),
      else: to_value(Map.from_struct(struct), opts)
  end

  def to_value(map, opts) when is_map(map),
    do: %Gp.Value{kind: {:struct_value, to_struct(map, opts)}}

  def to_value(other, _), do: %Gp.Value{kind: {:string_value, inspect(other)}}

  @doc """
  Converts a `%Google.Protobuf.Struct{}` back to a map with string keys (nil stays nil).
  Whole numbers below 2^53 come back as integers, other numbers as floats.
  """
  def from_struct(nil), do: nil

  def from_struct(%Gp.Struct{fields: fields}),
    do: Map.new(fields, fn {k, v} -> {k, from_value(v)} end)

  @doc "Converts a `%Google.Protobuf.Value{}` to an Elixir term (see `from_struct/1`)."
  def from_value(nil), do: nil
  def from_value(%Gp.Value{kind: nil}), do: nil
  def from_value(%Gp.Value{kind: {:null_value, _}}), do: nil
  def from_value(%Gp.Value{kind: {:bool_value, b}}), do: b
  def from_value(%Gp.Value{kind: {:string_value, s}}), do: s
  def from_value(%Gp.Value{kind: {:struct_value, s}}), do: from_struct(s)

  def from_value(%Gp.Value{kind: {:list_value, %Gp.ListValue{values: vs}}}),
    do: Enum.map(vs, &from_value/1)

  def from_value(%Gp.Value{kind: {:list_value, nil}}), do: []

  def from_value(%Gp.Value{kind: {:number_value, n}}) when is_float(n) do
    if n == Float.round(n) and abs(n) < 9_007_199_254_740_992, do: trunc(n), else: n
  end

  def from_value(%Gp.Value{kind: {:number_value, n}}), do: n

  defp key_string(k) when is_binary(k), do: k
  defp key_string(k) when is_atom(k) or is_number(k), do: to_string(k)
  defp key_string(k), do: inspect(k)

  defp truncate(s, nil), do: s
  defp truncate(s, max) when byte_size(s) <= max, do: s

  defp truncate(s, max) do
    # Cut at `max` bytes, then drop a partial trailing code point.
    cut = binary_part(s, 0, max)

    case String.chunk(cut, :valid) |> Enum.filter(&String.valid?/1) do
      [] -> ""
      chunks -> Enum.join(chunks)
    end
  end
end
