import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64 } from "hdr-histogram-js";
import type { Histogram } from "hdr-histogram-js";

/** newHistogram records latencies in microseconds, 3 significant digits, up to a minute and beyond. */
export function newHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

/** encodeHistogram is how a thread hands its histogram back. */
export const encodeHistogram = (histogram: Histogram): string => encodeIntoCompressedBase64(histogram);

/** addEncoded merges a thread's histogram into total. */
export function addEncoded(total: Histogram, encoded: string): void {
  const part = decodeFromCompressedBase64(encoded);
  total.add(part);
  part.destroy();
}
