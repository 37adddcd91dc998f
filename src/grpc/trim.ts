/**
 * trimWhiteSpace trims what the protovalidate rules' CEL `trim()` trims
 * (Unicode White_Space), so a name the validator measured as 1..200
 * characters is stored as exactly that. String.prototype.trim differs: it
 * also strips U+FEFF and keeps U+0085, which let "\uFEFF" pass validation and
 * then break the database's length check.
 */
export function trimWhiteSpace(text: string): string {
  return text.replace(/^\p{White_Space}+|\p{White_Space}+$/gu, "");
}
