#!/usr/bin/env python3
"""Writes the seed corpus for wav_fuzz: one tiny WAV per supported layout (a few KB in all).

Usage: python3 tests/fuzz/wav_corpus.py [OUT_DIR]   (default: tests/fuzz/corpus_wav next to this script)
"""
import math
import os
import struct
import sys

SUB_FORMAT_TAIL = bytes([0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71])


def chunk(chunk_id, body, declared=None):
    size = len(body) if declared is None else declared
    return chunk_id + struct.pack("<I", size) + body + (b"\0" if len(body) % 2 else b"")


def fmt(code, channels, rate, bits, extensible=False):
    align = channels * bits // 8
    body = struct.pack("<HHIIHH", 0xFFFE if extensible else code, channels, rate, rate * align, align, bits)
    if extensible:
        body += struct.pack("<HHI", 22, bits, 0x3 if channels == 2 else 0x4)
        body += struct.pack("<H", code) + SUB_FORMAT_TAIL
    return chunk(b"fmt ", body)


def riff(*chunks, declared=None):
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body) if declared is None else declared) + body


def tone(n, channels):
    return [0.6 * math.sin(2 * math.pi * 440 * i / 8000 + c) for i in range(n) for c in range(channels)]


def pcm(values, bits):
    if bits == 8:
        return bytes(int(round(v * 127)) + 128 for v in values)
    scale = 2 ** (bits - 1) - 1
    ints = [int(round(v * scale)) for v in values]
    if bits == 16:
        return struct.pack("<%dh" % len(ints), *ints)
    if bits == 24:
        return b"".join(struct.pack("<i", i)[:3] for i in ints)
    return struct.pack("<%di" % len(ints), *ints)


def floats(values, bits):
    return struct.pack("<%d%s" % (len(values), "f" if bits == 32 else "d"), *values)


def corpus():
    n = 64
    yield "pcm16_mono_16k.wav", riff(fmt(1, 1, 16000, 16), chunk(b"data", pcm(tone(n, 1), 16)))
    yield "pcm8_stereo_8k.wav", riff(fmt(1, 2, 8000, 8), chunk(b"data", pcm(tone(n, 2), 8)))
    yield "pcm24_mono_44k.wav", riff(fmt(1, 1, 44100, 24), chunk(b"data", pcm(tone(n, 1), 24)))
    yield "pcm32_mono_22k.wav", riff(fmt(1, 1, 22050, 32), chunk(b"data", pcm(tone(n, 1), 32)))
    yield "float32_mono_48k.wav", riff(fmt(3, 1, 48000, 32), chunk(b"data", floats(tone(n, 1), 32)))
    yield "float64_stereo_11k.wav", riff(fmt(3, 2, 11025, 64), chunk(b"data", floats(tone(16, 2), 64)))
    yield "ext_pcm24_stereo_96k.wav", riff(fmt(1, 2, 96000, 24, True), chunk(b"data", pcm(tone(n, 2), 24)))
    yield "ext_float32_mono_32k.wav", riff(fmt(3, 1, 32000, 32, True), chunk(b"data", floats(tone(n, 1), 32)))
    yield "list_odd_chunks.wav", riff(chunk(b"LIST", b"INFOabc"), fmt(1, 1, 16000, 16),
                                      chunk(b"data", pcm(tone(n, 1), 16)), chunk(b"id3 ", b"x"))
    yield "streaming_sizes.wav", riff(fmt(1, 1, 16000, 16), chunk(b"data", pcm(tone(n, 1), 16), 0xFFFFFFFF),
                                      declared=0xFFFFFFFF)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                 "corpus_wav")
    os.makedirs(out_dir, exist_ok=True)
    total = 0
    for name, data in corpus():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
        total += len(data)
    print("wrote %d bytes to %s" % (total, out_dir))


if __name__ == "__main__":
    main()
