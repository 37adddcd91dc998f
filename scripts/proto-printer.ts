// A small printer that turns a google.protobuf.FileDescriptorProto back into
// .proto source. It exists so that scripts/vendor-protos.ts can vendor
// buf/validate/validate.proto from the descriptor embedded in the installed
// @bufbuild/protovalidate, instead of downloading it. It covers proto2 and
// proto3 files (not editions) and is checked by a round trip through buf in
// scripts/proto-printer.test.ts.
import { getExtension, isFieldSet, ScalarType } from "@bufbuild/protobuf";
import type { DescExtension, DescField, DescMessage, Message, Registry } from "@bufbuild/protobuf";
import { protoCamelCase } from "@bufbuild/protobuf/reflect";
import { toText } from "@bufbuild/protobuf/txtpb";
import {
  EnumOptionsSchema,
  EnumValueOptionsSchema,
  ExtensionRangeOptionsSchema,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FieldDescriptorProtoSchema,
  FieldOptionsSchema,
  FileOptionsSchema,
  MessageOptionsSchema,
  MethodOptionsSchema,
  OneofOptionsSchema,
  ServiceOptionsSchema,
} from "@bufbuild/protobuf/wkt";
import type {
  DescriptorProto,
  EnumDescriptorProto,
  FieldDescriptorProto,
  FileDescriptorProto,
  ServiceDescriptorProto,
} from "@bufbuild/protobuf/wkt";

type Lines = string[];

interface Context {
  readonly syntax: "proto2" | "proto3";
  readonly registry: Registry | undefined;
}

/** Highest field number; `max` in message reserved and extension ranges. */
const FIELD_MAX = 536870911;
/** Highest enum value; `max` in enum reserved ranges. */
const ENUM_MAX = 2147483647;

/**
 * Prints a proto2 or proto3 file descriptor as .proto source that compiles
 * back to the same descriptor (minus source info). Type names are printed
 * fully qualified with a leading dot, so no scope resolution can go astray.
 *
 * Custom options arrive as unknown fields on the options messages. They are
 * printed when `registry` knows the extension (pass one containing the file
 * itself for options it defines, e.g. `(buf.validate.predefined)`), and are
 * silently omitted otherwise.
 */
export function printProtoFile(file: FileDescriptorProto, registry?: Registry): string {
  const syntax = file.syntax === "" ? "proto2" : file.syntax;
  if (syntax !== "proto2" && syntax !== "proto3") {
    throw new Error(`${file.name}: syntax "${file.syntax}" is not supported`);
  }
  const ctx: Context = { syntax, registry };
  const scope = file.package === "" ? "" : `.${file.package}`;
  const sections: Lines[] = [
    [`syntax = "${syntax}";`],
    file.package === "" ? [] : [`package ${file.package};`],
    file.dependency.map((dep, i) => `import ${importModifier(file, i)}"${dep}";`),
    optionStatements(FileOptionsSchema, file.options, ctx),
    ...file.messageType.map((m) => printMessage(m, scope, ctx)),
    ...file.enumType.map((e) => printEnum(e, ctx)),
    ...extendBlocks(file.extension, ctx),
    ...file.service.map((s) => printService(s, ctx)),
  ];
  return `${sections
    .filter((s) => s.length > 0)
    .map((s) => s.join("\n"))
    .join("\n\n")}\n`;
}

function importModifier(file: FileDescriptorProto, index: number): string {
  if (file.publicDependency.includes(index)) return "public ";
  return file.weakDependency.includes(index) ? "weak " : "";
}

/** Indents every line, including the inner lines of multi-line entries. */
function block(head: string, body: Lines): Lines {
  const inner = body.flatMap((l) => l.split("\n")).map((l) => (l === "" ? l : `  ${l}`));
  return [`${head} {`, ...inner, "}"];
}

function printMessage(msg: DescriptorProto, parentScope: string, ctx: Context): Lines {
  return block(`message ${msg.name}`, messageBody(msg, `${parentScope}.${msg.name}`, ctx));
}

/**
 * Map entries and group bodies are nested types declared by their field, so
 * they are printed with it. Other nested messages are printed as early as the
 * nested_type order allows, which keeps that order intact.
 */
function messageBody(msg: DescriptorProto, scope: string, ctx: Context): Lines {
  const owned = ownedNestedTypes(msg, scope);
  const ownedIndexes = new Set(owned.values());
  const body = optionStatements(MessageOptionsSchema, msg.options, ctx);
  let next = 0;
  const flushNested = () => {
    for (; next < msg.nestedType.length && !ownedIndexes.has(next); next++) {
      body.push(...printMessage(msg.nestedType[next], scope, ctx));
    }
  };
  flushNested();
  for (const chunk of fieldChunks(msg)) {
    body.push(...printChunk(msg, chunk, owned, scope, ctx));
    for (const field of chunk) next = Math.max(next, (owned.get(field) ?? -1) + 1);
    flushNested();
  }
  body.push(
    ...msg.enumType.flatMap((e) => printEnum(e, ctx)),
    ...msg.extensionRange.map(
      (r) =>
        `extensions ${range(r.start, r.end - 1, FIELD_MAX)}${brackets(optionEntries(ExtensionRangeOptionsSchema, r.options, ctx))};`,
    ),
    ...msg.reservedRange.map((r) => `reserved ${range(r.start, r.end - 1, FIELD_MAX)};`),
    ...reservedNames(msg.reservedName),
    ...extendBlocks(msg.extension, ctx).flat(),
  );
  return body;
}

/** Maps each map or group field to the index of the nested type it declares. */
function ownedNestedTypes(msg: DescriptorProto, scope: string): Map<FieldDescriptorProto, number> {
  const owned = new Map<FieldDescriptorProto, number>();
  for (const field of msg.field) {
    const i = msg.nestedType.findIndex((n) => field.typeName === `${scope}.${n.name}`);
    if (i >= 0 && (field.type === FieldDescriptorProto_Type.GROUP || msg.nestedType[i].options?.mapEntry)) {
      owned.set(field, i);
    }
  }
  return owned;
}

/**
 * The oneof a field really belongs to. An unset oneof_index reads as 0, so
 * presence is checked explicitly; proto3 `optional` fields live in synthetic
 * oneofs that are not declared in source.
 */
function realOneof(field: FieldDescriptorProto): number | undefined {
  const inOneof = isFieldSet(field, FieldDescriptorProtoSchema.field.oneofIndex) && !field.proto3Optional;
  return inOneof ? field.oneofIndex : undefined;
}

/** Splits fields into runs that are either a single plain field or one oneof. */
function fieldChunks(msg: DescriptorProto): FieldDescriptorProto[][] {
  const chunks: FieldDescriptorProto[][] = [];
  for (const field of msg.field) {
    const last = chunks.at(-1);
    const oneof = realOneof(field);
    if (last && oneof !== undefined && realOneof(last[0]) === oneof) last.push(field);
    else chunks.push([field]);
  }
  return chunks;
}

function printChunk(
  msg: DescriptorProto,
  chunk: FieldDescriptorProto[],
  owned: Map<FieldDescriptorProto, number>,
  scope: string,
  ctx: Context,
): Lines {
  const oneof = realOneof(chunk[0]);
  const fields = chunk.flatMap((f) => {
    const index = owned.get(f);
    const nested = index === undefined ? undefined : msg.nestedType[index];
    return printField(f, { nested, bare: oneof !== undefined, scope }, ctx);
  });
  if (oneof === undefined) return fields;
  const decl = msg.oneofDecl[oneof];
  return block(`oneof ${decl.name}`, [...optionStatements(OneofOptionsSchema, decl.options, ctx), ...fields]);
}

interface FieldPlacement {
  /** The map entry or group body declared by this field. */
  readonly nested?: DescriptorProto | undefined;
  /** Printed without a label (oneof members). */
  readonly bare?: boolean;
  /** Fully qualified name of the enclosing message; undefined for extensions. */
  readonly scope?: string | undefined;
}

function printField(field: FieldDescriptorProto, at: FieldPlacement, ctx: Context): Lines {
  const opts = brackets(fieldOptionEntries(field, at.scope === undefined, ctx));
  const tail = `${field.number}${opts}`;
  if (at.nested?.options?.mapEntry) {
    const [key, value] = at.nested.field;
    return [`map<${typeOf(key)}, ${typeOf(value)}> ${field.name} = ${tail};`];
  }
  const label = at.bare ? "" : labelOf(field, ctx);
  if (at.nested) {
    const body = messageBody(at.nested, `${at.scope}.${at.nested.name}`, ctx);
    return block(`${label}group ${at.nested.name} = ${tail}`, body);
  }
  return [`${label}${typeOf(field)} ${field.name} = ${tail};`];
}

function labelOf(field: FieldDescriptorProto, ctx: Context): string {
  if (field.label !== FieldDescriptorProto_Label.OPTIONAL) {
    return `${FieldDescriptorProto_Label[field.label].toLowerCase()} `;
  }
  return ctx.syntax === "proto2" || field.proto3Optional ? "optional " : "";
}

/** Scalar types by keyword; messages and enums by fully qualified name. */
function typeOf(field: FieldDescriptorProto): string {
  const named = field.type === FieldDescriptorProto_Type.MESSAGE || field.type === FieldDescriptorProto_Type.ENUM;
  return named ? field.typeName : FieldDescriptorProto_Type[field.type].toLowerCase();
}

/** Pseudo options (default, json_name) first, then the real field options. */
function fieldOptionEntries(field: FieldDescriptorProto, isExtension: boolean, ctx: Context): string[] {
  const entries: string[] = [];
  if (isFieldSet(field, FieldDescriptorProtoSchema.field.defaultValue)) {
    entries.push(`default = ${defaultLiteral(field)}`);
  }
  const customJson =
    isFieldSet(field, FieldDescriptorProtoSchema.field.jsonName) && field.jsonName !== protoCamelCase(field.name);
  if (customJson && !isExtension) entries.push(`json_name = ${quote(field.jsonName)}`);
  return [...entries, ...optionEntries(FieldOptionsSchema, field.options, ctx)];
}

/** Descriptors keep string defaults raw but bytes defaults already C-escaped. */
function defaultLiteral(field: FieldDescriptorProto): string {
  if (field.type === FieldDescriptorProto_Type.STRING) return quote(field.defaultValue);
  if (field.type === FieldDescriptorProto_Type.BYTES) return `"${field.defaultValue}"`;
  return field.defaultValue;
}

function printEnum(e: EnumDescriptorProto, ctx: Context): Lines {
  return block(`enum ${e.name}`, [
    ...optionStatements(EnumOptionsSchema, e.options, ctx),
    ...e.value.map((v) => `${v.name} = ${v.number}${brackets(optionEntries(EnumValueOptionsSchema, v.options, ctx))};`),
    ...e.reservedRange.map((r) => `reserved ${range(r.start, r.end, ENUM_MAX)};`),
    ...reservedNames(e.reservedName),
  ]);
}

/** Groups consecutive extensions of the same message into one `extend` block. */
function extendBlocks(extensions: FieldDescriptorProto[], ctx: Context): Lines[] {
  const groups: FieldDescriptorProto[][] = [];
  for (const ext of extensions) {
    const last = groups.at(-1);
    if (last && last[0].extendee === ext.extendee) last.push(ext);
    else groups.push([ext]);
  }
  return groups.map((g) =>
    block(
      `extend ${g[0].extendee}`,
      g.flatMap((ext) => printField(ext, {}, ctx)),
    ),
  );
}

function printService(service: ServiceDescriptorProto, ctx: Context): Lines {
  const methods = service.method.flatMap((m) => {
    const input = `${m.clientStreaming ? "stream " : ""}${m.inputType}`;
    const output = `${m.serverStreaming ? "stream " : ""}${m.outputType}`;
    const head = `rpc ${m.name}(${input}) returns (${output})`;
    const opts = optionStatements(MethodOptionsSchema, m.options, ctx);
    return opts.length > 0 ? block(head, opts) : [`${head};`];
  });
  return block(`service ${service.name}`, [
    ...optionStatements(ServiceOptionsSchema, service.options, ctx),
    ...methods,
  ]);
}

/** `start` to inclusive `end`, with the largest allowed number printed as `max`. */
function range(start: number, end: number, max: number): string {
  if (start === end) return `${start}`;
  return `${start} to ${end === max ? "max" : end}`;
}

function reservedNames(names: string[]): Lines {
  return names.length > 0 ? [`reserved ${names.map(quote).join(", ")};`] : [];
}

function brackets(entries: string[]): string {
  return entries.length > 0 ? ` [${entries.join(", ")}]` : "";
}

function optionStatements(schema: DescMessage, options: Message | undefined, ctx: Context): Lines {
  return optionEntries(schema, options, ctx).map((entry) => `option ${entry};`);
}

/**
 * Every set option as `name = value`: known fields of the options message,
 * then custom options (extensions) the registry can resolve. Repeated options
 * yield one entry per element, as they would be written by hand.
 */
function optionEntries(schema: DescMessage, options: Message | undefined, ctx: Context): string[] {
  if (options === undefined) return [];
  // Options messages have no oneofs, so every field is a plain property.
  const values = options as unknown as Record<string, unknown>;
  const known = schema.fields
    .filter((f) => f.name !== "uninterpreted_option" && isFieldSet(options, f))
    .flatMap((f) => literals(f, values[f.localName], ctx).map((v) => `${f.name} = ${v}`));
  const numbers = new Set((options.$unknown ?? []).map((u) => u.no));
  const custom = [...numbers].flatMap((no) => {
    const ext = ctx.registry?.getExtensionFor(schema, no);
    if (ext === undefined) return [];
    const value: unknown = getExtension(options, ext);
    return literals(ext, value, ctx).map((v) => `(.${ext.typeName}) = ${v}`);
  });
  return [...known, ...custom];
}

function literals(field: DescField | DescExtension, value: unknown, ctx: Context): string[] {
  const items = field.fieldKind === "list" ? (value as unknown[]) : [value];
  return items.map((item) => literal(field, item, ctx));
}

/** One option value: messages use the text format, like `{ id: "x" }`. */
function literal(field: DescField | DescExtension, value: unknown, ctx: Context): string {
  if (field.fieldKind === "map") throw new Error(`map option ${field.name} is not supported`);
  if (field.message) {
    const text = toText(field.message, value as Message, { registry: ctx.registry });
    return text === "" ? "{}" : `{\n${text.replace(/^(?=.)/gm, "  ")}}`;
  }
  if (field.enum) return field.enum.values.find((v) => v.number === value)?.name ?? String(value);
  return scalarLiteral(field.scalar, value);
}

function scalarLiteral(type: ScalarType | undefined, value: unknown): string {
  switch (type) {
    case ScalarType.STRING:
      return quote(value as string);
    case ScalarType.BYTES:
      return `"${[...(value as Uint8Array)].map(byteLiteral).join("")}"`;
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      return Number.isNaN(value) ? "nan" : String(value).replace("Infinity", "inf");
    default:
      return String(value);
  }
}

/** Printable ASCII stays as is; every other byte becomes an octal escape. */
function byteLiteral(b: number): string {
  const c = String.fromCharCode(b);
  return b >= 0x20 && b < 0x7f && c !== "\\" && c !== '"' ? c : `\\${b.toString(8).padStart(3, "0")}`;
}

const ESCAPES: Record<string, string> = { "\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** A double-quoted string literal; other control characters become `\xHH`. */
function quote(s: string): string {
  const escaped = s.replace(
    /[\\"\n\r\t\x00-\x1f\x7f]/g,
    (c) => ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
  return `"${escaped}"`;
}
