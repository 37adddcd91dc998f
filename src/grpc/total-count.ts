import { TotalSizeMode } from "../../gen/blog/v1/list_pb.js";
import type { TotalCount } from "../list/page.js";

/** totalCount is how a List request's total_size_mode asks the listing to count. */
export function totalCount(mode: TotalSizeMode): TotalCount {
  if (mode === TotalSizeMode.EXACT) return "exact";
  if (mode === TotalSizeMode.ESTIMATED) return "estimated";
  return "none";
}
