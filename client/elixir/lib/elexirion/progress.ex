defmodule Elexirion.Progress do
  @moduledoc """
  Follows an optimization job through `OptimizerService.StreamProgress` until it ends,
  reconnecting from the last sequence number seen.

  Events carry `seq` numbers starting at 1 and increasing by one per job; the server replays
  persisted events after `after_seq` and then follows live ones, ending the stream after the
  job's terminal `state_changed` event. So whenever a stream breaks (server restart or drain:
  `UNAVAILABLE`; a dropped connection; the per-stream deadline, which also guards against a
  half-dead connection), the follower opens a new one with `after_seq` = the last `seq` it
  handled: no event is lost and none is handled twice.

      {:ok, job} =
        Elexirion.Progress.follow(job.id, fn event, acc ->
          case event.kind do
            {:new_best, %{trial: t, score: s}} -> IO.puts("trial \#{t}: best \#{s}%")
            {:summary, s} -> IO.puts("baseline \#{s.baseline_score}% -> \#{s.best_score}%")
            _ -> :ok
          end

          acc
        end)

      job.state        #=> :JOB_STATE_SUCCEEDED
      job.result       #=> %Elexirion.V1.Program{...}
  """
  require Logger

  alias Elexirion.Client
  alias Elexirion.V1.ProgressEvent

  @terminal [:JOB_STATE_SUCCEEDED, :JOB_STATE_FAILED, :JOB_STATE_CANCELLED]

  # Errors after which we reconnect (others, e.g. NOT_FOUND or UNAUTHENTICATED, end the follow).
  @cancelled 1
  @unknown 2
  @deadline_exceeded 4
  @resource_exhausted 8
  @internal 13
  @unavailable 14

  @doc """
  Blocks until the job ends, calling `fun.(event, acc)` for every `%ProgressEvent{}` in `seq`
  order. Returns `{:ok, %Job{}}` (fetched with GetJob once the stream has ended) or
  `{:error, %GRPC.RPCError{}}`.

  Options: `:after_seq` (resume point, default 0: from the beginning), `:acc` (initial
  accumulator, passed to `fun`), `:stream_timeout` (deadline of one stream, default 600_000 ms),
  `:max_reconnects` (default 100), `:client`.
  """
  def follow(job_id, fun, opts \\ []) when is_function(fun, 2) do
    state = %{
      job_id: job_id,
      fun: fun,
      acc: Keyword.get(opts, :acc),
      last_seq: Keyword.get(opts, :after_seq, 0),
      reconnects: 0,
      ended: false,
      opts: opts
    }

    loop(state)
  end

  @doc """
  Starts `follow/3` in a task that sends `{:elexirion_progress, job_id, event}` to `pid` for
  each event and `{:elexirion_progress_done, job_id, result}` at the end. Handy from a
  LiveView or a GenServer, which must not block.
  """
  def watch(job_id, pid \\ self(), opts \\ []) do
    Task.start_link(fn ->
      forward = fn event, acc ->
        send(pid, {:elexirion_progress, job_id, event})
        acc
      end

      result = follow(job_id, forward, opts)

      send(pid, {:elexirion_progress_done, job_id, result})
    end)
  end

  defp loop(%{ended: true} = state), do: finish(state)

  defp loop(state) do
    client_opts = [
      client: Keyword.get(state.opts, :client, Client),
      timeout: Keyword.get(state.opts, :stream_timeout, 600_000)
    ]

    case Client.stream_progress(state.job_id, state.last_seq, client_opts) do
      {:ok, events} ->
        state |> consume(events) |> after_stream()

      {:error, error} ->
        reconnect_or_fail(state, error)
    end
  end

  # Reads one stream to its end; returns {:done | {:error, e}, state}.
  defp consume(state, events) do
    Enum.reduce_while(events, {:done, state}, fn
      {:ok, %ProgressEvent{seq: seq}}, {_status, %{last_seq: last}} = acc when seq <= last ->
        # Already handled before a reconnect.
        {:cont, acc}

      {:ok, %ProgressEvent{} = event}, {status, state} ->
        state = %{
          state
          | acc: state.fun.(event, state.acc),
            last_seq: event.seq,
            ended: state.ended or terminal?(event),
            # Progress was made: a later break starts its backoff from scratch.
            reconnects: 0
        }

        {:cont, {status, state}}

      {:error, error}, {_status, state} ->
        {:halt, {{:error, error}, state}}

      # Headers/trailers items appear only with return_headers: true; ignore them.
      _other, acc ->
        {:cont, acc}
    end)
  end

  defp after_stream({:done, %{ended: true} = state}), do: finish(state)

  defp after_stream({:done, state}) do
    # The stream closed cleanly before we saw the end (it should not): check the job.
    seen = state.last_seq

    case Client.get_job(state.job_id, client: Keyword.get(state.opts, :client, Client)) do
      {:ok, %{state: job_state, last_event_seq: last} = job}
      when job_state in @terminal and last <= seen ->
        {:ok, job}

      {:ok, _running_or_events_missed} ->
        reconnect(state)

      {:error, error} ->
        reconnect_or_fail(state, error)
    end
  end

  defp after_stream({{:error, error}, %{ended: true} = state}) do
    # The terminal event arrived; the stream's end did not matter.
    Logger.debug(
      "elexirion progress: stream ended with #{inspect(error)} after the terminal event"
    )

    finish(state)
  end

  defp after_stream({{:error, error}, state}), do: reconnect_or_fail(state, error)

  defp reconnect_or_fail(state, %GRPC.RPCError{status: status} = error)
       when status in [@unavailable, @deadline_exceeded, @resource_exhausted] do
    if status != @deadline_exceeded do
      Logger.info(
        "elexirion progress: #{state.job_id} stream broke (#{error.message}); resuming after seq #{state.last_seq}"
      )
    end

    reconnect(state, error)
  end

  defp reconnect_or_fail(state, %GRPC.RPCError{status: status} = error)
       when status in [@unknown, @internal, @cancelled] do
    if Client.transport_error?(error), do: reconnect(state, error), else: {:error, error}
  end

  defp reconnect_or_fail(_state, error), do: {:error, error}

  defp reconnect(state, error \\ nil) do
    max = Keyword.get(state.opts, :max_reconnects, 100)

    cond do
      # A deadline is the normal end of a quiet stream: reconnect at once, and don't count it.
      match?(%GRPC.RPCError{status: @deadline_exceeded}, error) ->
        loop(state)

      state.reconnects >= max ->
        {:error, error || GRPC.RPCError.exception(@unavailable, "too many reconnects")}

      true ->
        Process.sleep(Client.backoff_delay(state.reconnects + 1, 250, 10_000))
        loop(%{state | reconnects: state.reconnects + 1})
    end
  end

  defp finish(state) do
    Client.get_job(state.job_id, client: Keyword.get(state.opts, :client, Client))
  end

  @doc "True for a `state_changed` event into SUCCEEDED, FAILED or CANCELLED."
  def terminal?(%ProgressEvent{kind: {:state_changed, %{state: state}}}), do: state in @terminal
  def terminal?(_event), do: false
end
