// PyRandom: a re-implementation of CPython's `random.Random` (MT19937 seeded by
// init_by_array from the integer's 32-bit words, getrandbits, _randbelow, shuffle, sample,
// randint, choice, random) so that seeded choices made by DSPy's optimizers (LabeledFewShot's
// Random(0).sample, BootstrapFewShotWithRandomSearch's Random(seed).shuffle / randint, MIPROv2's
// shared rng) select exactly the examples DSPy selects with the same seed and data.
// Algorithms follow CPython 3.11+ (Lib/random.py, Modules/_randommodule.c).
//
// Every random choice in the optimizer goes through this class with an explicit seed; nothing
// reads std::random_device.
//
// Thread safety: not thread safe; one instance per sequential algorithm.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace elexirion::optimizer {

class PyRandom {
 public:
  // random.Random(seed): negative seeds use their absolute value, as CPython does.
  explicit PyRandom(int64_t seed = 0) { Seed(seed); }
  void Seed(int64_t seed);

  // random.getrandbits(k), k in [0, 64].
  uint64_t GetRandBits(int k);
  // random._randbelow(n) for n > 0 (0 when n == 0).
  uint64_t RandBelow(uint64_t n);
  // random.randint(a, b), a <= b.
  int64_t RandInt(int64_t a, int64_t b);
  // random.random(): a double in [0, 1) with 53 random bits.
  double Random();

  // random.shuffle(x).
  template <typename T>
  void Shuffle(std::vector<T>& x) {
    for (size_t i = x.size(); i-- > 1;) {
      const size_t j = static_cast<size_t>(RandBelow(i + 1));
      std::swap(x[i], x[j]);
    }
  }

  // Indices chosen by random.sample(range(n), k), in selection order (k <= n).
  std::vector<size_t> SampleIndices(size_t n, size_t k);

  // random.sample(population, k).
  template <typename T>
  std::vector<T> Sample(const std::vector<T>& population, size_t k) {
    std::vector<T> out;
    out.reserve(k);
    for (size_t i : SampleIndices(population.size(), k)) out.push_back(population[i]);
    return out;
  }

  // Index chosen by random.choice(seq) for a sequence of length n > 0.
  size_t ChoiceIndex(size_t n) { return static_cast<size_t>(RandBelow(n)); }

  // Index chosen by random.choices(population, weights, k=1) (cumulative weights, bisect on
  // random() * total); weights that do not sum above 0 (Python raises) choose uniformly.
  size_t WeightedChoiceIndex(const std::vector<double>& weights);

 private:
  uint32_t Next32();
  void InitGenrand(uint32_t s);

  static constexpr int kN = 624;
  std::array<uint32_t, kN> mt_{};
  int mti_ = kN + 1;
};

}  // namespace elexirion::optimizer
