/**
 * OpenTelemetry tracing through the SDK, configured by the standard OTEL_* variables and off unless they ask for it:
 * OTEL_TRACES_EXPORTER (`otlp`, `console`, or both comma-separated; `none` turns tracing off) or an OTLP endpoint
 * (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) turns it on; OTEL_SDK_DISABLED=true keeps it off.
 * The OTLP exporter speaks http/protobuf and reads its own variables (endpoint, headers, timeout, compression); the
 * batch processor reads OTEL_BSP_*, the sampler OTEL_TRACES_SAMPLER(_ARG), the resource OTEL_SERVICE_NAME and
 * OTEL_RESOURCE_ATTRIBUTES. The SDK is loaded only when tracing is on.
 */
import type { Tracer } from '@opentelemetry/api';

export interface Telemetry {
  tracer: Tracer;
  /** The exporters in use, e.g. ['otlp']. */
  exporters: string[];
  /** Flushes and stops the exporters. */
  shutdown(): Promise<void>;
}

function exportersOf(env: NodeJS.ProcessEnv): string[] {
  return (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
}

/** Whether the environment asks for traces. */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false;
  const named = exportersOf(env);
  if (named.length > 0) return named.some((e) => e !== 'none');
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** Starts the SDK when the environment asks for traces (registering it globally); undefined otherwise. */
export async function startTelemetry(env: NodeJS.ProcessEnv, version: string): Promise<Telemetry | undefined> {
  if (!tracingRequested(env)) return undefined;
  const named = exportersOf(env).filter((e) => e !== 'none');
  const exporters = named.length > 0 ? [...new Set(named)] : ['otlp'];
  const { NodeTracerProvider } = await import('@opentelemetry/sdk-trace-node');
  const { BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const { detectResources, envDetector, resourceFromAttributes } = await import('@opentelemetry/resources');
  const processors = [];
  for (const name of exporters) {
    if (name === 'console') {
      processors.push(new SimpleSpanProcessor(new ConsoleSpanExporter()));
    } else if (name === 'otlp') {
      const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
      if (protocol !== 'http/protobuf') {
        throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL=${protocol} is not supported: gradserve exports traces over http/protobuf (the OTLP default, port 4318)`);
      }
      const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
      processors.push(new BatchSpanProcessor(new OTLPTraceExporter()));
    } else {
      throw new Error(`OTEL_TRACES_EXPORTER: unknown exporter "${name}" (gradserve has otlp, console and none)`);
    }
  }
  // The environment's resource attributes (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) win over the defaults.
  const resource = resourceFromAttributes({ 'service.name': 'gradserve', 'service.version': version })
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: processors });
  // Global provider, W3C trace-context propagation and the async context manager.
  provider.register();
  return { tracer: provider.getTracer('gradserve', version), exporters, shutdown: () => provider.shutdown() };
}
