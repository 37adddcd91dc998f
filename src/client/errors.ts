import { createRegistry, fromBinary, isMessage } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { Metadata, status } from "@grpc/grpc-js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  PreconditionFailureSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
  file_google_rpc_error_details,
} from "../../gen/google/rpc/error_details_pb.js";
import type {
  BadRequest,
  DebugInfo,
  ErrorInfo,
  Help,
  LocalizedMessage,
  PreconditionFailure,
  QuotaFailure,
  RequestInfo,
  ResourceInfo,
  RetryInfo,
} from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";

import { statusDetailsKey } from "../protocol/keys.js";

export { statusDetailsKey };

/** ErrorDetail is one of the standard google.rpc error detail messages. */
export type ErrorDetail =
  | ErrorInfo
  | RetryInfo
  | DebugInfo
  | QuotaFailure
  | PreconditionFailure
  | BadRequest
  | RequestInfo
  | ResourceInfo
  | Help
  | LocalizedMessage;

const registry = createRegistry(file_google_rpc_error_details);

/**
 * decodeErrorDetails reads the google.rpc.Status in the grpc-status-details-bin
 * trailer and unpacks its details. Types outside google/rpc/error_details.proto
 * and a trailer that does not parse are skipped: details only ever add to the
 * status code and message, so they must never hide them.
 */
export function decodeErrorDetails(trailers: Metadata): ErrorDetail[] {
  const [bytes] = trailers.get(statusDetailsKey);
  if (!(bytes instanceof Uint8Array)) return [];
  try {
    const decoded = fromBinary(StatusSchema, bytes).details.map((any) => anyUnpack(any, registry));
    return decoded.filter((detail) => detail !== undefined) as ErrorDetail[];
  } catch {
    return [];
  }
}

/**
 * BlogClientError is the one error every client call rejects with (streams
 * too): the gRPC status code, its message, the trailers and the decoded error
 * details, so callers branch on `code` instead of parsing text.
 */
export class BlogClientError extends Error {
  override name = "BlogClientError";

  constructor(
    readonly code: status,
    readonly details: string,
    readonly metadata: Metadata = new Metadata(),
    readonly errorDetails: ErrorDetail[] = decodeErrorDetails(metadata),
    options?: { cause?: unknown },
  ) {
    super(`${status[code] ?? code}: ${details}`, options);
  }

  /** findDetail returns the first detail of the given type, if the server sent one. */
  findDetail<Desc extends DescMessage>(schema: Desc): MessageShape<Desc> | undefined {
    return this.errorDetails.find((detail) => isMessage(detail, schema)) as MessageShape<Desc> | undefined;
  }

  /** errorInfo is the machine-readable reason (google.rpc.ErrorInfo), if sent. */
  get errorInfo(): ErrorInfo | undefined {
    return this.findDetail(ErrorInfoSchema);
  }

  /** badRequest lists the invalid fields (google.rpc.BadRequest), if sent. */
  get badRequest(): BadRequest | undefined {
    return this.findDetail(BadRequestSchema);
  }

  /** preconditionFailure lists the failed preconditions, if sent. */
  get preconditionFailure(): PreconditionFailure | undefined {
    return this.findDetail(PreconditionFailureSchema);
  }

  /** resourceInfo names the resource the error is about, if sent. */
  get resourceInfo(): ResourceInfo | undefined {
    return this.findDetail(ResourceInfoSchema);
  }

  /** retryInfo says how long to wait before retrying, if sent. */
  get retryInfo(): RetryInfo | undefined {
    return this.findDetail(RetryInfoSchema);
  }
}

/**
 * toBlogClientError wraps what grpc-js rejects with (an Error carrying code,
 * details and metadata) into a BlogClientError; anything else becomes UNKNOWN
 * with the original as `cause`.
 */
export function toBlogClientError(error: unknown): BlogClientError {
  if (error instanceof BlogClientError) return error;
  const e = error as { code?: unknown; details?: unknown; metadata?: unknown } | null;
  if (typeof e?.code === "number" && typeof e.details === "string") {
    const metadata = e.metadata instanceof Metadata ? e.metadata : new Metadata();
    return new BlogClientError(e.code, e.details, metadata, undefined, { cause: error });
  }
  return new BlogClientError(
    status.UNKNOWN,
    error instanceof Error ? error.message : String(error),
    undefined,
    undefined,
    {
      cause: error,
    },
  );
}
