import { EventEmitter, on } from "node:events";
import { status } from "@grpc/grpc-js";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import type { Health } from "../../gen/grpc/health/v1/health_pb.js";
import type { ServiceImpl } from "./adapter.js";
import { ServiceError } from "./errors.js";

export { ServingStatus };

/**
 * HealthStatus is the grpc.health.v1 status board: "" is the whole server,
 * other keys are fully qualified service names. Watchers see every change.
 */
export class HealthStatus {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly changes = new EventEmitter({ captureRejections: true });
  private readonly closing = new AbortController();

  constructor(services: string[], initial: ServingStatus) {
    this.changes.setMaxListeners(0);
    for (const service of ["", ...services]) this.statuses.set(service, initial);
  }

  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** entries lists every service with its status. */
  entries(): [string, ServingStatus][] {
    return [...this.statuses];
  }

  /** setAll flips the server and every service at once (start-up, shutdown, database loss). */
  setAll(value: ServingStatus): void {
    for (const service of this.statuses.keys()) this.set(service, value);
  }

  set(service: string, value: ServingStatus): void {
    if (this.statuses.get(service) === value) return;
    this.statuses.set(service, value);
    this.changes.emit("change", service, value);
  }

  /**
   * close ends every watch once it has yielded the changes made before (the
   * shutdown's NOT_SERVING), so open Watch streams cannot hold a server that
   * is shutting down past its grace period.
   */
  close(): void {
    this.closing.abort();
  }

  /** watch yields the current status of service, then each change, until signal aborts or close. */
  async *watch(service: string, signal: AbortSignal): AsyncGenerator<ServingStatus> {
    const until = AbortSignal.any([signal, this.closing.signal]);
    yield this.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
    try {
      for await (const [changed, value] of on(this.changes, "change", { signal: until })) {
        if (changed === service) yield value as ServingStatus;
      }
    } catch (error) {
      if (!until.aborted) throw error;
    }
  }
}

/** healthService implements grpc.health.v1.Health (Check, Watch, List) over a HealthStatus. */
export function healthService(health: HealthStatus): ServiceImpl<typeof Health> {
  return {
    async check({ service }) {
      const current = health.get(service);
      if (current === undefined) throw new ServiceError(status.NOT_FOUND, `service "${service}" is not known`);
      return { status: current };
    },
    async *watch({ service }, { cancellation }) {
      for await (const current of health.watch(service, cancellation.signal)) yield { status: current };
    },
    async list() {
      const statuses = Object.fromEntries(health.entries().map(([name, s]) => [name, { status: s }]));
      return { statuses };
    },
  };
}
