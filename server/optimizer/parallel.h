// Bounded parallel loops for the optimizer: many program runs (and so many LlmClient calls)
// in flight, each worker blocking on its own call.
//
// Thread safety: ParallelFor is reentrant; `fn` must be safe to call concurrently for
// different indices.
#pragma once

#include <cstddef>
#include <functional>

namespace elexirion::optimizer {

// Calls fn(i) for every i in [0, n) on min(threads, n) threads (threads <= 1: on the calling
// thread, in order). Once `stop` (optional) returns true no new index is started; running
// calls finish. Returns when every started call has returned.
void ParallelFor(size_t n, int threads, const std::function<void(size_t)>& fn,
                 const std::function<bool()>& stop = nullptr);

}  // namespace elexirion::optimizer
