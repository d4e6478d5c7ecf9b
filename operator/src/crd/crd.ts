/** The ZeroFSVolume CustomResourceDefinition object, built from crd/schema.ts. */
import { APP_NAME, CRD_NAME, GROUP, KIND, LABEL_NAME, LABEL_PART_OF, PLURAL, SHORT_NAMES, SINGULAR, VERSION } from "../api/constants.ts";
import type { KubeObject } from "../kube/types.ts";
import { volumeSchema } from "./schema.ts";

export function buildCrd(): KubeObject {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: CRD_NAME, labels: { [LABEL_NAME]: APP_NAME, [LABEL_PART_OF]: APP_NAME } },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: { kind: KIND, listKind: `${KIND}List`, plural: PLURAL, singular: SINGULAR, shortNames: SHORT_NAMES, categories: ["zerofs"] },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
            { name: "Phase", type: "string", jsonPath: ".status.phase" },
            { name: "Server", type: "string", jsonPath: ".status.server.clusterIP" },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
            { name: "Message", type: "string", jsonPath: ".status.message", priority: 1 },
            { name: "URL", type: "string", jsonPath: ".spec.storage.url", priority: 1 },
          ],
          schema: { openAPIV3Schema: volumeSchema },
        },
      ],
    },
  };
}
