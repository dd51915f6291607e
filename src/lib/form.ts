/**
 * Calls `each(name, value)` for every pair of an application/x-www-form-urlencoded text, as
 * `URLSearchParams` parses it (the URL Standard). A text with nothing to decode in it (no "%" and
 * no "+", as client_credentials requests usually are) is split in place, without URLSearchParams'
 * runtime object, iterator and pair arrays per request; any other goes through URLSearchParams.
 * `text` must be well-formed UTF-16 (TextDecoder output is).
 */
export function eachFormPair(text: string, each: (name: string, value: string) => void): void {
  if (text.includes("%") || text.includes("+")) {
    for (const [name, value] of new URLSearchParams(text)) each(name, value);
    return;
  }
  // URLSearchParams drops one leading "?" of its init string.
  let start = text.startsWith("?") ? 1 : 0;
  while (start < text.length) {
    let end = text.indexOf("&", start);
    if (end < 0) end = text.length;
    if (end > start) {
      const eq = text.indexOf("=", start);
      if (eq >= 0 && eq < end) each(text.slice(start, eq), text.slice(eq + 1, end));
      else each(text.slice(start, end), "");
    }
    start = end + 1;
  }
}
