"""An offline spoken-keyword data set: eSpeak NG words in synthetic noise, as Edge Impulse MFCCs.

Tests and the quickstart cannot download Speech Commands, yet the built-in data set
(`synthetic.py`) is not audio at all. This module speaks real words with the eSpeak NG library of
the `espeakng-loader` wheel: the keywords yes / no / up / down, an `unknown` class of ten other
short words and a `noise` class without speech, each sample varied in voice, pitch, rate, onset,
loudness and background noise. The features are computed the way Edge Impulse's MFCC block does,
so a folder written here looks to a learning block like one exported from a keyword-spotting
project. Nothing is downloaded; the same seed gives byte-identical arrays.

    python -m dendrisweep.data.spoken --out DIR [--seed S] [--per-class N]
"""
from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from math import gcd
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.fft import dct
from scipy.signal import resample_poly

from dendrisweep.data.dataset import COEFFICIENTS, LabelledArrays
from dendrisweep.data.npy_splits import write_directory
from dendrisweep.errors import USAGE_EXIT_CODE, ArgumentParser, UsageError, cli_errors, one_line

KEYWORDS = ("yes", "no", "up", "down")
UNKNOWN_WORDS = ("left", "right", "go", "stop", "on", "off", "one", "two", "cat", "dog")
CLASSES = tuple(sorted((*KEYWORDS, "unknown", "noise")))  # label i is CLASSES[i]
# 600 per class: a 20 % test hold-out of the training split is 576 samples, so one run's test accuracy
# carries about 1.4 pp of binomial noise at 87 % (at 300 per class and a 10 % hold-out: 144 and 2.8 pp).
DEFAULT_PER_CLASS = 600
VALIDATION_SHARE = 0.2

# Edge Impulse's MFCC block with its keyword-spotting defaults (mfcc/parameters.json).
SAMPLE_RATE = 16000
SAMPLES = SAMPLE_RATE  # a 1 s window
FRAME = 320  # 0.02 s frame length and stride: 50 frames without overlap
FRAMES = SAMPLES // FRAME
FILTERS = 32
FFT_LENGTH = 256
LOW_FREQUENCY = 300.0  # the block's default; its speechpy fork also turns 0 into 300 Hz
PRE_EMPHASIS = 0.98
NORMALISATION_WINDOW = 101  # frames, Edge Impulse's `win_size`
_ZERO = 1e-10  # speechpy's zero_handling and cmvnw epsilon

# eSpeak NG's C API (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2  # espeak_AUDIO_OUTPUT: PLAYBACK 0, RETRIEVAL 1, SYNCHRONOUS 2
_INITIALIZE_DONT_EXIT = 0x8000  # report missing data as an error instead of calling exit()
_POS_CHARACTER = 1  # espeak_POSITION_TYPE
_CHARS_UTF8 = 1
_RATE, _PITCH, _RANGE = 1, 3, 4  # espeak_PARAMETER
_EE_OK = 0
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.c_void_p)

# Accents times voice variants of the shipped espeak-ng-data (lang/gmw, voices/!v).
_ACCENTS = ("en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029")
_VARIANTS = ("", "+m1", "+m3", "+m7", "+f2", "+f3", "+f4", "+klatt", "+croak")
VOICES = tuple(accent + variant for accent in _ACCENTS for variant in _VARIANTS)

_SNR_DB = (5.0, 10.0, 20.0)
_CHUNK = 256  # samples mixed and featurised at a time, bounding memory


class Utterance(NamedTuple):
    """One word as eSpeak should speak it."""

    word: str
    voice: str
    rate: int  # words per minute
    pitch: int  # 0-100
    pitch_range: int  # 0-100, intonation range
    seed: int  # of eSpeak's own random generator (breathy voices)


class _Engine:
    """This process's eSpeak NG, initialised once; its callback collects the samples of a word."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
            library = ctypes.CDLL(espeakng_loader.get_library_path())
            data = espeakng_loader.get_data_path()
            library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
            library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
            library.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]  # eSpeak NG 1.52 and later
            library.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                             ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        except (ImportError, OSError, RuntimeError, AttributeError) as exc:
            raise UsageError(f"cannot load the eSpeak NG synthesiser ({exc}); "
                             "install the espeakng-loader wheel") from None
        self.rate = library.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(),
                                              _INITIALIZE_DONT_EXIT)
        if self.rate <= 0:
            raise UsageError(f"eSpeak NG failed to initialise with its data at {data}")
        self._chunks: list[np.ndarray] = []
        self._callback = _SynthCallback(self._collect)  # kept alive as long as the library uses it
        library.espeak_SetSynthCallback(self._callback)
        self._library = library

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int | None) -> int:
        if wav and count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0  # 0: continue synthesising

    def speak(self, utterance: Utterance) -> np.ndarray:
        """The int16 samples of one utterance at the library's own rate (22050 Hz)."""
        if self._library.espeak_SetVoiceByName(utterance.voice.encode()) != _EE_OK:
            raise UsageError(f"eSpeak NG has no voice {utterance.voice!r}")
        for parameter, value in ((_RATE, utterance.rate), (_PITCH, utterance.pitch),
                                 (_RANGE, utterance.pitch_range)):
            self._library.espeak_SetParameter(parameter, value, 0)
        # seeded from the clock otherwise, which makes the breathy variants (f2, f3) irreproducible
        self._library.espeak_ng_SetRandSeed(utterance.seed)
        text = utterance.word.encode()
        self._chunks = []
        status = self._library.espeak_Synth(text, len(text) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                                            None, None)
        self._library.espeak_Synchronize()
        if status != _EE_OK or not self._chunks:
            raise UsageError(f"eSpeak NG could not speak {utterance.word!r} (status {status})")
        return np.concatenate(self._chunks)


@lru_cache(maxsize=1)
def _engine() -> _Engine:
    """The process's one engine: eSpeak's state is global to the library, so it is loaded once."""
    return _Engine()


def _trimmed(samples: np.ndarray) -> np.ndarray:
    """The word without eSpeak's leading and trailing near-silence, so placement is ours."""
    loud = np.flatnonzero(np.abs(samples) > 0.01 * np.abs(samples).max())
    return samples[loud[0]:loud[-1] + 1]


def synthesise(utterances: list[Utterance]) -> list[np.ndarray]:
    """Speak each utterance in this process: float waveforms at 16 kHz, peak 1, trimmed.

    eSpeak keeps state between utterances (its pitch flutter and wave phase live in C statics), so
    a word's samples depend on everything this process spoke before; `spoken_words` is the
    reproducible way in.
    """
    engine = _engine()
    divisor = gcd(SAMPLE_RATE, engine.rate)
    words = []
    for utterance in utterances:
        raw = engine.speak(utterance).astype(np.float64)
        resampled = resample_poly(raw, SAMPLE_RATE // divisor, engine.rate // divisor)
        word = _trimmed(resampled)[:SAMPLES]
        words.append((word / np.abs(word).max()).astype(np.float32))
    return words


def _worker(path: str) -> None:
    """The child process of `spoken_words`: utterances as JSON on stdin, the words to an .npz."""
    try:
        words = synthesise([Utterance(*u) for u in json.load(sys.stdin)])
    except UsageError as exc:
        print(one_line(str(exc)), file=sys.stderr)
        raise SystemExit(USAGE_EXIT_CODE) from None
    np.savez(path, samples=np.concatenate(words), lengths=[len(w) for w in words])


_WORKER = "import sys; from dendrisweep.data.spoken import _worker; _worker(sys.argv[1])"


def spoken_words(utterances: list[Utterance]) -> list[np.ndarray]:
    """`synthesise` in a fresh Python process, which makes the audio a function of the list alone.

    A plain subprocess rather than multiprocessing: spawn would re-import the caller's main module,
    which breaks scripts without a `__main__` guard, and fork would inherit eSpeak's state.
    """
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory(prefix="dendrisweep-espeak-") as scratch:
        path = Path(scratch) / "words.npz"
        done = subprocess.run([sys.executable, "-c", _WORKER, str(path)], input=json.dumps(utterances), env=env,
                              capture_output=True, text=True, check=False)
        if done.returncode == USAGE_EXIT_CODE:
            raise UsageError(done.stderr.strip().splitlines()[-1])
        if done.returncode:
            raise RuntimeError(f"the eSpeak NG worker failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
        with np.load(path) as saved:
            return np.split(saved["samples"], np.cumsum(saved["lengths"])[:-1])


def _mel(frequency: np.ndarray | float) -> np.ndarray:
    return 1127 * np.log(1 + np.asarray(frequency) / 700.0)


@lru_cache(maxsize=1)
def filterbank() -> np.ndarray:
    """Triangular mel filters (FILTERS x FFT bins) as Edge Impulse's speechpy fork builds them (v4)."""
    bins = FFT_LENGTH // 2 + 1
    hertz = 700 * (np.exp(np.linspace(_mel(LOW_FREQUENCY), _mel(SAMPLE_RATE / 2), FILTERS + 2) / 1127) - 1)
    hertz[-1] -= 0.001  # the fork's guard that keeps the top edge in the last bin on every platform
    edges = np.floor((FFT_LENGTH + 1) * hertz / SAMPLE_RATE).astype(int)
    k = np.arange(bins, dtype=np.float64)
    bank = np.zeros((FILTERS, bins))
    for i in range(FILTERS):
        left, middle, right = edges[i:i + 3]
        rising = (k > left) & (k <= middle)
        falling = (k >= middle) & (k < right)
        bank[i, rising] = (k[rising] - left) / (middle - left)
        bank[i, falling] = (right - k[falling]) / (right - middle)
    return bank


def _nonzero(x: np.ndarray) -> np.ndarray:
    """speechpy's zero_handling: a tiny value instead of 0, so the log stays finite."""
    return np.where(x == 0, _ZERO, x)


def _sliding_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean over `window` frames centred on each frame, the edges mirrored (speechpy's cmvnw)."""
    half = window // 2
    padded = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(half, half), (0, 0)], mode="symmetric")
    cumulative = np.cumsum(padded, axis=-2)
    cumulative = np.concatenate([np.zeros_like(cumulative[..., :1, :]), cumulative], axis=-2)
    return (cumulative[..., window:, :] - cumulative[..., :-window, :]) / window


def mfcc(signals: np.ndarray) -> np.ndarray:
    """Edge Impulse MFCC features of 1 s, 16 kHz signals in int16 units: (..., SAMPLES) -> (..., 50, 13).

    The steps of the block's speechpy fork: pre-emphasis (x[n] - 0.98 x[n-1], wrapping at the
    start like np.roll), 20 ms frames without window function, power spectrum |rfft|^2 / 256 with
    256 FFT points (numpy crops each 320-sample frame to its first 256 samples, as in the block),
    32 mel filters from 300 Hz to 8 kHz, log, orthonormal DCT-II keeping 13 coefficients with
    coefficient 0 replaced by the log frame energy, then mean and variance normalisation over a
    sliding window of 101 frames.
    """
    if signals.shape[-1] != SAMPLES:
        raise ValueError(f"expected {SAMPLES} samples per signal, got {signals.shape[-1]}")
    x = np.asarray(signals, dtype=np.float64)
    emphasised = x - PRE_EMPHASIS * np.roll(x, 1, axis=-1)
    frames = emphasised.reshape(*x.shape[:-1], FRAMES, FRAME)
    power = np.abs(np.fft.rfft(frames, n=FFT_LENGTH, axis=-1)) ** 2 / FFT_LENGTH
    cepstra = dct(np.log(_nonzero(power @ filterbank().T)), type=2, axis=-1, norm="ortho")[..., :COEFFICIENTS]
    cepstra[..., 0] = np.log(_nonzero(power.sum(axis=-1)))
    centred = cepstra - _sliding_mean(cepstra, NORMALISATION_WINDOW)
    spread = np.sqrt(np.maximum(_sliding_mean(centred ** 2, NORMALISATION_WINDOW)
                                - _sliding_mean(centred, NORMALISATION_WINDOW) ** 2, 0))
    return centred / (spread + _ZERO)


def _rms(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean(x ** 2, axis=-1, keepdims=True))


def background(rng: np.random.Generator, count: int) -> np.ndarray:
    """Unit-RMS noise: a random spectral slope from white (0) over pink (1) to brown (2), a slow
    swell in loudness, and in a third of the samples a mains buzz (50 or 60 Hz and 7 harmonics)."""
    t = np.arange(SAMPLES) / SAMPLE_RATE
    freqs = np.fft.rfftfreq(SAMPLES, 1 / SAMPLE_RATE)
    slope = rng.uniform(0, 2, size=(count, 1))
    shaped = np.fft.irfft(np.fft.rfft(rng.standard_normal((count, SAMPLES)))
                          * np.maximum(freqs, 20.0) ** (-slope / 2), n=SAMPLES)
    depth, rate, phase = (rng.uniform(0, 0.5, size=(count, 1)), rng.uniform(0.2, 2, size=(count, 1)),
                          rng.uniform(0, 2 * np.pi, size=(count, 1)))
    noise = shaped * (1 + depth * np.sin(2 * np.pi * rate * t + phase))
    noise /= _rms(noise)
    hummed = np.flatnonzero(rng.random(count) < 1 / 3)
    mains = rng.choice([50.0, 60.0], size=(len(hummed), 1))
    phases = rng.uniform(0, 2 * np.pi, size=(8, len(hummed), 1))
    buzz = sum(np.sin(2 * np.pi * h * mains * t + phases[h - 1]) / h for h in range(1, 9))
    noise[hummed] += rng.uniform(0.2, 0.6, size=(len(hummed), 1)) * buzz / _rms(buzz)
    return noise / _rms(noise)


def _mix(rng: np.random.Generator, words: list[np.ndarray | None]) -> np.ndarray:
    """Int16-valued 1 s clips: each word (None: no word) at a random onset over noise at a random SNR,
    the clip scaled to a random peak level as a recording would be."""
    clips = background(rng, len(words))
    snr = rng.choice(_SNR_DB, size=len(words))
    onset = rng.random(len(words))
    for i, word in enumerate(words):
        if word is None:
            continue
        start = int(onset[i] * (SAMPLES - len(word) + 1))
        clips[i] *= _rms(word) / 10 ** (snr[i] / 20)
        clips[i, start:start + len(word)] += word
    peak = np.exp(rng.uniform(np.log(0.05), np.log(0.9), size=(len(words), 1)))
    clips *= peak / np.abs(clips).max(axis=1, keepdims=True)
    return np.round(clips * 32767)


def _plan(rng: np.random.Generator, labels: np.ndarray) -> list[Utterance | None]:
    """What each sample says (None for the noise class)."""
    count = len(labels)
    voices = rng.integers(len(VOICES), size=count)
    rates = rng.integers(120, 241, size=count)
    pitches = rng.integers(20, 81, size=count)
    ranges = rng.integers(20, 91, size=count)
    others = rng.integers(len(UNKNOWN_WORDS), size=count)
    seeds = rng.integers(2 ** 31, size=count)
    plan: list[Utterance | None] = []
    for i, label in enumerate(labels):
        name = CLASSES[label]
        if name == "noise":
            plan.append(None)
            continue
        word = UNKNOWN_WORDS[others[i]] if name == "unknown" else name
        plan.append(Utterance(word, VOICES[voices[i]], int(rates[i]), int(pitches[i]),
                              int(ranges[i]), int(seeds[i])))
    return plan


def make_spoken_data(seed: int, per_class: int = DEFAULT_PER_CLASS) -> tuple[LabelledArrays, LabelledArrays, int]:
    """(train, validation, number of classes); `per_class` samples of each class, a fifth of them
    (at least one) held out for validation, both splits balanced and shuffled."""
    if per_class < 2:
        raise UsageError(f"per_class must be at least 2 (one training and one validation sample), got {per_class}")
    rng = np.random.default_rng([seed, 31337])
    labels = rng.permutation(np.repeat(np.arange(len(CLASSES)), per_class))
    plan = _plan(rng, labels)
    spoken = iter(spoken_words([u for u in plan if u is not None]))
    words = [None if u is None else next(spoken) for u in plan]
    features = np.concatenate([mfcc(_mix(rng, words[i:i + _CHUNK])) for i in range(0, len(words), _CHUNK)])
    x = features.reshape(len(labels), -1).astype(np.float32)
    held_out = max(1, round(per_class * VALIDATION_SHARE))
    is_val = np.zeros(len(labels), dtype=bool)
    for label in range(len(CLASSES)):
        is_val[np.flatnonzero(labels == label)[:held_out]] = True
    return (LabelledArrays(x[~is_val], labels[~is_val].astype(np.int64)),
            LabelledArrays(x[is_val], labels[is_val].astype(np.int64)), len(CLASSES))


def build(out_dir: Path, seed: int = 0, per_class: int = DEFAULT_PER_CLASS) -> tuple[LabelledArrays, LabelledArrays]:
    """Write the data set to `out_dir` in the Edge Impulse layout, plus labels.json (class names in
    label order, which the one-hot Y columns do not carry); returns (train, validation)."""
    train, val, classes = make_spoken_data(seed, per_class)
    write_directory(out_dir, train, val, classes)
    (out_dir / "labels.json").write_text(json.dumps(list(CLASSES)) + "\n")
    return train, val


def main(argv: list[str] | None = None) -> None:
    """The command line; a missing synthesiser or a bad size is one line on stderr and exit 2."""
    parser = ArgumentParser(prog="python -m dendrisweep.data.spoken", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the .npy files and labels.json to")
    parser.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    parser.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS,
                        help=f"samples per class, train and validation together (default {DEFAULT_PER_CLASS})")
    with cli_errors(parser.prog):
        args = parser.parse_args(argv)
        started = time.perf_counter()
        train, val = build(args.out, args.seed, args.per_class)
        print(f"{len(train.y) + len(val.y)} samples ({len(train.y)} train, {len(val.y)} validation), "
              f"{len(CLASSES)} classes ({', '.join(CLASSES)}) in {args.out} "
              f"in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
