const encoder = new TextEncoder();

/** Whether JSON.stringify would write `value` other than as its chars in quotes (an escape, or non-ASCII). */
function needsEscape(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7f) return true;
  }
  return false;
}

/**
 * JSON written straight as UTF-8 bytes into one buffer reused across calls: the bytes of
 * `JSON.stringify` for the same values (tested, test/unit/json-bytes.test.ts), without the
 * string, its UTF-8 copy and the string builder's parts per call. For the JWT payload written
 * per request (src/domain/jwt.ts). The view `bytes()` returns is valid until the next `begin()`.
 */
export class JsonBytes {
  private buf = new Uint8Array(1024);
  private n = 0;

  begin(): this {
    this.n = 0;
    return this;
  }

  /** Room for `more` bytes. */
  private reserve(more: number): void {
    if (this.n + more <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.buf.length * 2, this.n + more));
    grown.set(this.buf.subarray(0, this.n));
    this.buf = grown;
  }

  /** ASCII written as it is: the caller's names and punctuation, or text checked to need no escape. */
  raw(ascii: string): this {
    this.reserve(ascii.length);
    for (let i = 0; i < ascii.length; i++) this.buf[this.n++] = ascii.charCodeAt(i);
    return this;
  }

  /** A JSON string. */
  string(value: string): this {
    return needsEscape(value) ? this.utf8(JSON.stringify(value)) : this.raw('"').raw(value).raw('"');
  }

  /** The JSON string of `values.join(separator)` (an ASCII separator with nothing to escape), without the joined string. */
  joined(values: readonly string[], separator: string): this {
    for (let i = 0; i < values.length; i++) if (needsEscape(values[i]!)) return this.utf8(JSON.stringify(values.join(separator)));
    this.raw('"');
    for (let i = 0; i < values.length; i++) {
      if (i > 0) this.raw(separator);
      this.raw(values[i]!);
    }
    return this.raw('"');
  }

  /** A JSON array of strings. */
  strings(values: readonly string[]): this {
    this.raw("[");
    for (let i = 0; i < values.length; i++) {
      if (i > 0) this.raw(",");
      this.string(values[i]!);
    }
    return this.raw("]");
  }

  /** A JSON number; the digits of a non-negative safe integer (a NumericDate) without a string. */
  number(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) return this.raw(JSON.stringify(value));
    let digits = 1;
    for (let v = value; v >= 10; v = Math.floor(v / 10)) digits++;
    this.reserve(digits);
    for (let v = value, o = this.n + digits - 1; o >= this.n; o--, v = Math.floor(v / 10)) this.buf[o] = 48 + (v % 10);
    this.n += digits;
    return this;
  }

  private utf8(text: string): this {
    this.reserve(text.length * 3);
    this.n += encoder.encodeInto(text, this.buf.subarray(this.n)).written;
    return this;
  }

  /** The bytes written since `begin()`. */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.n);
  }
}
