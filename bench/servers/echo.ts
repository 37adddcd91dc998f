import { Server, ServerCredentials, status } from "@grpc/grpc-js";
import type { handleServerStreamingCall, handleUnaryCall, UntypedServiceImplementation } from "@grpc/grpc-js";
import { serviceDefinition } from "../../src/grpc/adapter.js";
import { scenarios } from "../scenarios/index.js";
import { answerOrchestrator } from "./child.js";

// `echo`: the transport's limit. A grpc-js server on the service's own
// descriptors that answers every call with canned bytes (the service's answer
// to the scenario's sample request, sent by the orchestrator): no decoding,
// no database, no encoding.

const canned = new Map<string, Buffer[]>();
const identity = (bytes: Buffer) => bytes;
const server = new Server();
for (const service of new Set(scenarios.map((s) => s.method.parent))) {
  const definition = Object.fromEntries(
    Object.entries(serviceDefinition(service)).map(([name, method]) => [
      name,
      { ...method, requestDeserialize: identity, responseSerialize: identity },
    ]),
  );
  const handlers: UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    const missing = { code: status.UNIMPLEMENTED, details: `no canned answer for ${method.path}` };
    const stream: handleServerStreamingCall<Buffer, Buffer> = (call) => {
      const responses = canned.get(method.path);
      if (responses === undefined) {
        call.emit("error", missing);
        return;
      }
      for (const response of responses) call.write(response);
      call.end();
    };
    const unary: handleUnaryCall<Buffer, Buffer> = (_call, callback) => {
      const [response] = canned.get(method.path) ?? [];
      if (response === undefined) callback(missing);
      else callback(null, response);
    };
    handlers[name] = method.responseStream ? stream : unary;
  }
  server.addService(definition, handlers);
}

const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) =>
    error ? reject(error) : resolve(bound),
  ),
);
answerOrchestrator({
  port,
  statements: () => 0,
  canned: (path, responses) => canned.set(path, responses),
  stop: async () => server.forceShutdown(),
});
