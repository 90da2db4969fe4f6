// The Kubernetes manifests must agree with each other and with the service: settings the server really reads, memory
// budgets that fit the container limit, a grace period that covers the drain, selectors that select, and a podman
// variant that stays the same Deployment. The container test runs them; this catches drift without a cluster.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { SETTINGS, loadConfig } from '../../src/server/config.js';

const DIR = path.resolve(import.meta.dirname, '../../deploy/kubernetes');

// Plain objects from YAML: the checks below read fields by path and fail with a clear message when one is missing.
type Doc = Record<string, any>;

function load(file: string): Doc[] {
  return parseAllDocuments(readFileSync(path.join(DIR, file), 'utf8')).map((d) => d.toJSON() as Doc);
}
function one(file: string, kind: string): Doc {
  const docs = load(file).filter((d) => d.kind === kind);
  expect(docs, `${file} should hold one ${kind}`).toHaveLength(1);
  return docs[0]!;
}

/** Kubernetes quantities ("2Gi", "512Mi", "1G") in bytes. */
function quantityBytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`not a memory quantity: ${q}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

const configMap = one('configmap.yaml', 'ConfigMap');
const settings: Record<string, string> = configMap.data;
const deployment = one('deployment.yaml', 'Deployment');
const pod = deployment.spec.template.spec;
const container = pod.containers[0];
const config = loadConfig(settings, []);

describe('deploy/kubernetes', () => {
  it('kustomization lists every manifest in the folder, and only those', () => {
    const kust = one('kustomization.yaml', 'Kustomization');
    const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
    expect([...kust.resources].sort()).toEqual(files);
    expect(kust.images.map((i: Doc) => i.name)).toContain(container.image);
  });

  it('ConfigMap sets only variables that gradserve (or Node/OpenBLAS) reads, with values it accepts', () => {
    const known = new Set(SETTINGS.flatMap((s) => s.env));
    for (const key of Object.keys(settings)) {
      if (key === 'OPENBLAS_NUM_THREADS') continue;
      expect(known.has(key), `${key} is not a gradserve setting`).toBe(true);
    }
    expect(config.modelRepository).toBe('/models');
    expect(config.port).toBe(8080);
  });

  it('memory budgets fit the container limit, and the limit is also the request', () => {
    const limit = quantityBytes(container.resources.limits.memory);
    expect(quantityBytes(container.resources.requests.memory)).toBe(limit);
    // Node's own heap, sockets and response buffers need room beside the budget and two bodies in flight.
    expect(config.serverMemoryBytes + 2 * config.bodyLimitBytes + 512 * 2 ** 20).toBeLessThanOrEqual(limit);
    expect(config.requestMemoryBytes).toBeLessThanOrEqual(config.serverMemoryBytes);
  });

  it('one kernel thread per CPU of the limit, without a re-exec to resize the pool', () => {
    expect(config.workers).toBe(Number(container.resources.limits.cpu));
    expect(settings.UV_THREADPOOL_SIZE).toBe(String(config.workers));
    expect(settings.OPENBLAS_NUM_THREADS).toBe('1');
  });

  it('the grace period covers preStop plus the drain, and the drain outlasts any request', () => {
    const preStop = container.lifecycle.preStop.exec.command;
    expect(preStop[0]).toBe('sleep');
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(Number(preStop[1]) + config.shutdownTimeoutMs / 1000);
    expect(config.shutdownTimeoutMs).toBeGreaterThan(config.requestTimeoutMs);
  });

  it('probes use the Open Inference Protocol health endpoints on the serving port', () => {
    expect(container.ports).toEqual([{ name: 'http', containerPort: 8080 }, { name: 'metrics', containerPort: config.metricsPort }]);
    expect(container.readinessProbe.httpGet).toEqual({ path: '/v2/health/ready', port: 'http' });
    expect(container.startupProbe.httpGet).toEqual({ path: '/v2/health/ready', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/v2/health/live', port: 'http' });
    expect(container.args).toEqual(['serve']);
    expect(container.envFrom).toEqual([{ configMapRef: { name: configMap.metadata.name } }]);
  });

  it('Prometheus scrapes a port where /metrics needs no API key, and the Service does not expose it', () => {
    const a = deployment.spec.template.metadata.annotations;
    expect(a['prometheus.io/scrape']).toBe('true');
    expect(a['prometheus.io/path']).toBe('/metrics');
    const port = Number(a['prometheus.io/port']);
    // API keys may come from the secret: the scraped port must be the metrics port, or the serving port with
    // GRADSERVE_PUBLIC_METRICS
    if (port === config.port) expect(config.publicMetrics).toBe(true);
    else expect(port).toBe(config.metricsPort);
    const service = one('service.yaml', 'Service');
    expect(service.spec.ports.map((p: Doc) => p.targetPort)).not.toContain('metrics');
    expect(service.spec.ports.map((p: Doc) => p.targetPort)).not.toContain(config.metricsPort);
  });

  it('runs as the image user, non-root, with the model repository mounted read-only', () => {
    const dockerUser = /^USER (\d+):(\d+)$/m.exec(readFileSync(path.resolve(DIR, '../../Dockerfile'), 'utf8'));
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(String(pod.securityContext.runAsUser)).toBe(dockerUser?.[1]);
    const mount = container.volumeMounts.find((m: Doc) => m.mountPath === config.modelRepository);
    expect(mount?.readOnly).toBe(true);
    const volume = pod.volumes.find((v: Doc) => v.name === mount.name);
    const pvc = one('models-pvc.yaml', 'PersistentVolumeClaim');
    expect(volume.persistentVolumeClaim).toEqual({ claimName: pvc.metadata.name, readOnly: true });
    expect(pvc.spec.accessModes).toEqual(['ReadOnlyMany']);
  });

  it('Service, PodDisruptionBudget and autoscaler all point at the Deployment', () => {
    const labels = deployment.spec.template.metadata.labels;
    expect(deployment.spec.selector.matchLabels).toEqual(labels);
    const service = one('service.yaml', 'Service');
    expect(service.spec.selector).toEqual(labels);
    expect(service.spec.ports[0].targetPort).toBe('http');
    expect(one('pdb.yaml', 'PodDisruptionBudget').spec.selector.matchLabels).toEqual(labels);
    const hpa = one('hpa.yaml', 'HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
    expect(hpa.spec.metrics[0].resource.name).toBe('cpu');
    // the PDB must leave a replica serving at the autoscaler's minimum
    expect(hpa.spec.minReplicas).toBeGreaterThan(one('pdb.yaml', 'PodDisruptionBudget').spec.maxUnavailable);
  });

  it('the podman kube play variant is the same pod, with only what podman needs changed', () => {
    const play = one('podman/gradserve.yaml', 'Deployment');
    const pPod = play.spec.template.spec;
    const pc = pPod.containers[0];
    expect(play.spec.replicas).toBe(1);
    expect(pPod.terminationGracePeriodSeconds).toBe(pod.terminationGracePeriodSeconds);
    expect(pPod.securityContext.runAsUser).toBe(pod.securityContext.runAsUser);
    for (const key of ['name', 'args', 'envFrom', 'resources', 'lifecycle', 'securityContext', 'volumeMounts'] as const) {
      expect(pc[key], key).toEqual(container[key]);
    }
    expect(pPod.volumes.find((v: Doc) => v.name === 'tmp')).toEqual(pod.volumes.find((v: Doc) => v.name === 'tmp'));
    expect(pc.ports).toEqual([{ containerPort: 8080, hostIP: '127.0.0.1', hostPort: 8080 }]);
    // exec probes doing the same HTTP checks (podman would turn httpGet into curl, which the image lacks)
    expect(pc.readinessProbe.exec.command.join(' ')).toContain('http://127.0.0.1:8080/v2/health/ready');
    expect(pc.livenessProbe.exec.command.join(' ')).toContain('http://127.0.0.1:8080/v2/health/live');
    expect(pc.volumeMounts.find((m: Doc) => m.mountPath === config.modelRepository)?.readOnly).toBe(true);
  });
});
