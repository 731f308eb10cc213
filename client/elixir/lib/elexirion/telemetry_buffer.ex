defmodule Elexirion.TelemetryBuffer do
  @moduledoc """
  Batches `ExecutionRecord`s and ships them with `TelemetryService.RecordExecutions`.

    * `push/2` is a `GenServer.cast`: the pipeline process that emits the event never waits
      for this process or for the network.
    * A batch is sent when `:max_batch` records are queued (default 100, at most 1000) or
      every `:flush_interval` ms (default 1_000), one batch in flight at a time, from a task
      under `Elexirion.TaskSupervisor` so this process keeps accepting records meanwhile.
    * The queue holds at most `:max_queue` records (default 10_000). While the server is down
      the oldest records are dropped and counted (`stats/1`, and the telemetry event
      `[:elexirion, :telemetry_buffer, :dropped]` with measurement `count`).
    * A batch that failed with a retryable error (`UNAVAILABLE`, `RESOURCE_EXHAUSTED`, a
      dropped connection, a deadline, or `UNIMPLEMENTED` from a server without the telemetry
      feedback loop yet) goes back to the head of the queue unchanged and is resent after a
      backoff with jitter (0.5 s doubling to 30 s). The records keep their `record_id`s, so
      the server deduplicates a batch that had in fact been stored before the error.
      A batch over the server's message size limit is split in two; other errors drop the
      batch with a log line.
    * Records the server rejects individually (`RecordExecutionsResponse.rejected`) are logged
      with their index in the batch, `record_id` and reason; they are not resent.
    * On shutdown the queue gets one last best-effort send (`:shutdown_flush`, default
      5_000 ms).
  """
  use GenServer
  require Logger

  alias Elexirion.Client
  alias Elexirion.V1.{ExecutionRecord, RecordExecutionsResponse}

  @unimplemented 12
  @deadline_exceeded 4

  @defaults [
    name: __MODULE__,
    client: Elexirion.Client,
    task_supervisor: Elexirion.TaskSupervisor,
    max_batch: 100,
    flush_interval: 1_000,
    max_queue: 10_000,
    rpc_timeout: 15_000,
    shutdown_flush: 5_000
  ]

  def start_link(opts \\ []) do
    opts = Keyword.merge(@defaults, opts)
    GenServer.start_link(__MODULE__, opts, name: opts[:name])
  end

  def child_spec(opts) do
    %{
      id: Keyword.get(opts, :name, __MODULE__),
      start: {__MODULE__, :start_link, [opts]},
      shutdown: Keyword.get(opts, :shutdown_flush, 5_000) + 1_000
    }
  end

  @doc "Queues one record. Never blocks; a no-op when the buffer is not running."
  def push(buffer \\ __MODULE__, %ExecutionRecord{} = record) do
    GenServer.cast(buffer, {:push, record})
  end

  @doc "Sends what is queued now instead of waiting for the timer."
  def flush(buffer \\ __MODULE__), do: GenServer.cast(buffer, :flush_now)

  @doc "Counters: `queued`, `in_flight`, `accepted`, `rejected`, `harvested`, `dropped`, `failed_batches`."
  def stats(buffer \\ __MODULE__), do: GenServer.call(buffer, :stats)

  ## Server

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)
    max_batch = opts[:max_batch]

    unless is_integer(max_batch) and max_batch in 1..1000 do
      raise ArgumentError, ":max_batch must be in 1..1000 (RecordExecutions' limit)"
    end

    state = %{
      opts: Map.new(opts),
      queue: :queue.new(),
      len: 0,
      # {task_ref, batch} while a send runs
      in_flight: nil,
      # consecutive failed sends; > 0 means we are backing off
      failures: 0,
      backoff_timer: nil,
      warned_unimplemented: false,
      stats: %{accepted: 0, rejected: 0, harvested: 0, dropped: 0, failed_batches: 0}
    }

    schedule_tick(state)
    {:ok, state}
  end

  @impl true
  def handle_cast({:push, record}, state) do
    state = state |> enqueue_back([record]) |> maybe_send(:batch_full)
    {:noreply, state}
  end

  def handle_cast(:flush_now, state), do: {:noreply, maybe_send(state, :any)}

  @impl true
  def handle_call(:stats, _from, state) do
    in_flight = if state.in_flight, do: length(elem(state.in_flight, 1)), else: 0
    {:reply, Map.merge(state.stats, %{queued: state.len, in_flight: in_flight}), state}
  end

  @impl true
  def handle_info(:tick, state) do
    schedule_tick(state)
    {:noreply, maybe_send(state, :any)}
  end

  def handle_info(:backoff_over, state) do
    {:noreply, maybe_send(%{state | backoff_timer: nil}, :any)}
  end

  # The send task finished.
  def handle_info({ref, result}, %{in_flight: {ref, batch}} = state) do
    Process.demonitor(ref, [:flush])
    state = handle_result(result, batch, %{state | in_flight: nil})
    {:noreply, maybe_send(state, :batch_full)}
  end

  # The send task crashed: keep the batch and try again later.
  def handle_info({:DOWN, ref, :process, _pid, reason}, %{in_flight: {ref, batch}} = state) do
    Logger.warning("elexirion telemetry: send task crashed: #{inspect(reason)}")
    {:noreply, retry_later(%{state | in_flight: nil}, batch)}
  end

  def handle_info(_msg, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, state) do
    # Best effort: the in-flight batch and the queue, within :shutdown_flush ms.
    pending =
      case state.in_flight do
        {_ref, batch} -> batch ++ :queue.to_list(state.queue)
        nil -> :queue.to_list(state.queue)
      end

    deadline = System.monotonic_time(:millisecond) + state.opts.shutdown_flush

    pending
    |> Enum.chunk_every(state.opts.max_batch)
    |> Enum.reduce_while(:ok, fn batch, :ok ->
      remaining = deadline - System.monotonic_time(:millisecond)

      with true <- remaining > 0,
           {:ok, response} <-
             Client.record_executions(batch,
               client: state.opts.client,
               timeout: remaining,
               retry: false
             ) do
        log_rejections(response, batch)
        {:cont, :ok}
      else
        _ ->
          Logger.warning("elexirion telemetry: #{length(pending)} records unsent at shutdown")
          {:halt, :ok}
      end
    end)
  end

  ## Sending

  defp maybe_send(%{in_flight: nil, backoff_timer: nil, len: len} = state, mode)
       when len > 0 do
    if mode == :any or len >= state.opts.max_batch, do: send_batch(state), else: state
  end

  defp maybe_send(state, _mode), do: state

  defp send_batch(state) do
    {batch, queue} = take(state.queue, min(state.len, state.opts.max_batch))
    %{client: client, rpc_timeout: timeout, task_supervisor: sup} = state.opts

    task =
      Task.Supervisor.async_nolink(sup, fn ->
        # Retries are ours (backoff without holding a task), so one attempt per send.
        Client.record_executions(batch, client: client, timeout: timeout, retry: false)
      end)

    %{state | queue: queue, len: state.len - length(batch), in_flight: {task.ref, batch}}
  end

  defp handle_result({:ok, %RecordExecutionsResponse{} = response}, batch, state) do
    rejected = log_rejections(response, batch)

    stats = %{
      state.stats
      | accepted: state.stats.accepted + response.accepted,
        rejected: state.stats.rejected + rejected,
        harvested: state.stats.harvested + response.harvested
    }

    %{state | stats: stats, failures: 0}
  end

  defp handle_result({:error, %GRPC.RPCError{} = error}, batch, state) do
    cond do
      Client.too_large?(error) and length(batch) > 1 ->
        # Resend as two halves, same records and ids, without waiting.
        {first, second} = Enum.split(batch, div(length(batch), 2))
        state |> enqueue_front(second) |> enqueue_front(first)

      retryable?(error) ->
        state = warn_unimplemented(state, error)
        retry_later(state, batch)

      true ->
        Logger.error(
          "elexirion telemetry: dropping #{length(batch)} records: " <>
            "#{GRPC.Status.code_name(error.status)} #{error.message}"
        )

        count_drop(%{state | failures: 0}, length(batch), :failed_batches)
    end
  end

  defp handle_result(other, batch, state) do
    Logger.warning("elexirion telemetry: unexpected send result #{inspect(other)}")
    retry_later(state, batch)
  end

  defp retryable?(%GRPC.RPCError{status: status} = error) do
    status in [@unimplemented, @deadline_exceeded] or
      Client.retryable?(error, idempotent: true)
  end

  defp retry_later(state, batch) do
    failures = state.failures + 1
    delay = Client.backoff_delay(failures, 500, 30_000) |> max(250)
    timer = Process.send_after(self(), :backoff_over, delay)
    stats = %{state.stats | failed_batches: state.stats.failed_batches + 1}
    enqueue_front(%{state | failures: failures, backoff_timer: timer, stats: stats}, batch)
  end

  defp warn_unimplemented(%{warned_unimplemented: false} = state, %{status: @unimplemented} = e) do
    Logger.warning(
      "elexirion telemetry: server does not record executions yet (#{e.message}); buffering"
    )

    %{state | warned_unimplemented: true}
  end

  defp warn_unimplemented(state, _error), do: state

  # Logs each rejected record (index into the batch, its record_id, the reason); returns the count.
  defp log_rejections(%RecordExecutionsResponse{rejected: rejected}, batch) do
    records = List.to_tuple(batch)

    Enum.each(rejected, fn %{index: index, reason: reason} ->
      record_id =
        if index >= 0 and index < tuple_size(records),
          do: elem(records, index).record_id,
          else: "?"

      Logger.warning(
        "elexirion telemetry: record rejected: index=#{index} record_id=#{record_id} reason=#{reason}"
      )
    end)

    length(rejected)
  end

  ## Bounded queue (drops the oldest)

  defp enqueue_back(state, records) do
    queue = Enum.reduce(records, state.queue, &:queue.in/2)
    trim(%{state | queue: queue, len: state.len + length(records)})
  end

  defp enqueue_front(state, records) do
    queue = records |> Enum.reverse() |> Enum.reduce(state.queue, &:queue.in_r/2)
    trim(%{state | queue: queue, len: state.len + length(records)})
  end

  defp trim(%{len: len, opts: %{max_queue: max}} = state) when len > max do
    excess = len - max
    {_dropped, queue} = take(state.queue, excess)
    count_drop(%{state | queue: queue, len: max}, excess, nil)
  end

  defp trim(state), do: state

  defp count_drop(state, count, extra) do
    :telemetry.execute([:elexirion, :telemetry_buffer, :dropped], %{count: count}, %{})

    if state.stats.dropped == 0 or rem(state.stats.dropped + count, 1_000) < count do
      Logger.warning("elexirion telemetry: dropped #{state.stats.dropped + count} records so far")
    end

    stats = Map.update!(state.stats, :dropped, &(&1 + count))
    stats = if extra, do: Map.update!(stats, extra, &(&1 + 1)), else: stats
    %{state | stats: stats}
  end

  defp take(queue, n) do
    {taken, rest} = :queue.split(n, queue)
    {:queue.to_list(taken), rest}
  end

  defp schedule_tick(state), do: Process.send_after(self(), :tick, state.opts.flush_interval)
end
