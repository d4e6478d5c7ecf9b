/**
 * What the cluster admin (the chart) lets a volume's author ask for, and the defaults the operator
 * fills in. A volume author can create namespaced objects in their own namespace; through the
 * operator they must not gain more: a claim in someone else's namespace, an arbitrary image run
 * with the volume's Secrets, tolerations onto dedicated nodes, or a priority that preempts others.
 * A spec that asks for more than the policy allows is refused with a status condition naming the
 * field and the chart value that would allow it; the running server keeps its previous settings.
 */
import type { NormalizedSpec } from "./spec.ts";

export interface PolicyProblem {
  reason: string;
  message: string;
}

/** Private and shared address space: the node and pod networks of almost every cluster, never the Internet. */
export const PRIVATE_CIDRS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"];

export interface VolumePolicy {
  /** Claims may live in namespaces other than the volume's. */
  allowCrossNamespaceClaims: boolean;
  /** Images spec.server.image may name besides the operator's default: exact, or a prefix ending in "*"; "*" allows any. */
  allowedImages: string[];
  allowTolerations: boolean;
  /** nodeSelector and affinity. */
  allowNodePlacement: boolean;
  /** PriorityClass names spec.server.priorityClassName may name; "*" allows any. */
  allowedPriorityClasses: string[];
}

export interface NetworkDefaults {
  /** ZEROFS_ALLOWED_CLIENTS when spec.nfs.allowedCIDRs is empty (non-empty). */
  allowedCIDRs: string[];
  /** ZEROFS_HTTP_ALLOWED_CLIENTS: the kubelet's probes (node addresses) and the scrapers. */
  httpAllowedCIDRs: string[];
  /** Create a NetworkPolicy per volume. */
  networkPolicy: boolean;
  /** NetworkPolicyPeers admitted to the metrics port of every volume. */
  metricsFrom: Record<string, unknown>[];
  /**
   * NetworkPolicyPeers admitted to the HTTP port (9090) for the admin API: the operator's own
   * pods (the chart sets this), which create and size claim directories of shared volumes.
   */
  adminFrom: Record<string, unknown>[];
}

export const DEFAULT_POLICY: VolumePolicy = {
  allowCrossNamespaceClaims: false,
  allowedImages: [],
  allowTolerations: false,
  allowNodePlacement: true,
  allowedPriorityClasses: [],
};

export const DEFAULT_NETWORK: NetworkDefaults = {
  allowedCIDRs: PRIVATE_CIDRS,
  httpAllowedCIDRs: PRIVATE_CIDRS,
  networkPolicy: true,
  metricsFrom: [],
  adminFrom: [],
};

export function matchesPattern(value: string, patterns: string[]): boolean {
  return patterns.some((p) => p === "*" || p === value || (p.endsWith("*") && value.startsWith(p.slice(0, -1))));
}

/** The first thing the spec asks for that the policy refuses, as a status Problem; undefined when allowed. */
export function checkPolicy(spec: NormalizedSpec, volumeNamespace: string, defaultImage: string, p: VolumePolicy): PolicyProblem | undefined {
  const claimNs = spec.persistentVolume.claim.namespace;
  if (spec.persistentVolume.create && spec.persistentVolume.claim.create && claimNs !== undefined && claimNs !== volumeNamespace && !p.allowCrossNamespaceClaims) {
    return {
      reason: "ClaimNamespaceNotAllowed",
      message: `spec.persistentVolume.claim.namespace ${claimNs} is not the volume's namespace ${volumeNamespace}; the operator only creates claims in the volume's own namespace (chart value volumePolicy.allowCrossNamespaceClaims)`,
    };
  }
  const image = spec.server.image;
  if (image !== undefined && image !== defaultImage && !matchesPattern(image, p.allowedImages)) {
    return {
      reason: "ImageNotAllowed",
      message: `spec.server.image ${image} is not allowed: the operator runs ${defaultImage}${p.allowedImages.length ? ` or images matching ${p.allowedImages.join(", ")}` : ""} (chart value volumePolicy.allowedImages)`,
    };
  }
  if (spec.server.tolerations?.length && !p.allowTolerations) {
    return { reason: "SchedulingNotAllowed", message: "spec.server.tolerations is not allowed by the operator (chart value volumePolicy.allowTolerations)" };
  }
  if (!p.allowNodePlacement && (spec.server.nodeSelector || spec.server.affinity)) {
    return { reason: "SchedulingNotAllowed", message: "spec.server.nodeSelector and spec.server.affinity are not allowed by the operator (chart value volumePolicy.allowNodePlacement)" };
  }
  const pc = spec.server.priorityClassName;
  if (pc && !matchesPattern(pc, p.allowedPriorityClasses)) {
    return {
      reason: "SchedulingNotAllowed",
      message: `spec.server.priorityClassName ${pc} is not allowed by the operator (chart value volumePolicy.allowedPriorityClasses${p.allowedPriorityClasses.length ? `: ${p.allowedPriorityClasses.join(", ")}` : " is empty"})`,
    };
  }
  return undefined;
}

/** The client list the server enforces: the spec's, else the operator's default. Never empty. */
export function effectiveAllowedCIDRs(spec: NormalizedSpec, d: NetworkDefaults): string[] {
  return spec.nfs.allowedCIDRs.length > 0 ? spec.nfs.allowedCIDRs : d.allowedCIDRs;
}
