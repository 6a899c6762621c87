// Offline checks of the Kubernetes manifests in k8s/ (run by scripts/check-manifests.sh).
//
//   node k8s-schema-check.mjs FILE...
//       Every document against the Kubernetes API schema (kubernetes-models: types, enums,
//       required fields), with unknown field names rejected (the field lists of
//       @kubernetes/client-node's generated models, which Kubernetes' own schema leaves open), then
//       rules the schema cannot express (every container has an image, selectors and named ports
//       match, mounted ConfigMaps exist, cachecar's resources fit its memory cache). Exit 1 on any
//       error, printed as FILE:LINE: Kind/name: field: what is wrong.
//   node k8s-schema-check.mjs --extract-config CONFIGMAP_FILE OUT
//       Writes the cachecar.yaml key of the ConfigMap to OUT (for cachecar --check-config).
//   node k8s-schema-check.mjs --play-copy OUT [--image NAME=IMAGE]... FILE...
//       Writes the documents of FILEs to OUT for `podman kube play`: images renamed, pulls off
//       (imagePullPolicy: Never), one replica, no ports or probes (see playCopy). Prints one
//       line per ConfigMap (`configmap NAME`), Secret key used in an env (`secret NAME KEY`)
//       and probe left out (`probe CONTAINER KIND http PORT PATH`, or the probe's handler
//       instead of `http` when it is not an httpGet).
//
// The packages are installed next to a copy of this file (outside the repository), hence the bare
// imports.
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import * as models from "@kubernetes/client-node/dist/gen/models/all.js";

const kMiB = 1024 * 1024;
// cachecar's memory beyond its memory caches' max_bytes: entry metadata, per-connection buffers,
// bodies in flight. The request must cover the cache plus the base, the limit twice the base.
const kCachecarBaseBytes = 64 * kMiB;

// Printed before the errors; not failures. A Set: deployment.yaml and its native-sidecar variant
// share the ConfigMap and would repeat each warning.
const warnings = new Set();

// ---------------------------------------------------------------------------------------------
// Loading

/** Parses FILE into documents: {file, doc (YAML.Document), obj, lines (LineCounter)}. */
function loadFile(file, errors) {
  const text = fs.readFileSync(file, "utf8");
  const lines = new YAML.LineCounter();
  // Kubernetes reads manifests as YAML 1.1 (an unquoted `no` is false): parse the same way.
  const docs = YAML.parseAllDocuments(text, { version: "1.1", lineCounter: lines });
  const out = [];
  for (const doc of docs) {
    for (const e of doc.errors) {
      errors.push(`${file}:${lines.linePos(e.pos[0]).line}: YAML: ${e.message.split("\n")[0]}`);
    }
    const obj = doc.toJS({ maxAliasCount: 100 });
    if (obj !== null && obj !== undefined) {
      out.push({ file, doc, obj, lines });
    }
  }
  return out;
}

function lineOf(entry, pathParts) {
  for (let n = pathParts.length; n >= 0; n--) {
    const node = entry.doc.getIn(pathParts.slice(0, n), true);
    if (node && node.range) {
      return entry.lines.linePos(node.range[0]).line;
    }
  }
  return 1;
}

function describe(entry) {
  const o = entry.obj;
  return `${o.kind ?? "?"}/${o.metadata?.name ?? "?"}`;
}

function fieldPath(parts) {
  let s = "";
  for (const p of parts) {
    s += typeof p === "number" ? `[${p}]` : s === "" ? p : `.${p}`;
  }
  return s === "" ? "(document)" : s;
}

function report(errors, entry, parts, message) {
  errors.push(`${entry.file}:${lineOf(entry, parts)}: ${describe(entry)}: ${fieldPath(parts)}: ` +
              message);
}

// ---------------------------------------------------------------------------------------------
// Schema: kubernetes-models (types, enums, required) + client-node field lists (unknown fields)

function splitApiVersion(apiVersion) {
  const i = apiVersion.indexOf("/");
  return i < 0 ? { group: "", version: apiVersion } : {
    group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

async function kubernetesModel(apiVersion, kind) {
  const { group, version } = splitApiVersion(apiVersion);
  const spec = `kubernetes-models/${group === "" ? "" : group + "/"}${version}/${kind}`;
  try {
    return (await import(spec))[kind];
  } catch {
    return undefined;
  }
}

function clientNodeClass(apiVersion, kind) {
  const { version } = splitApiVersion(apiVersion);
  return models[version.charAt(0).toUpperCase() + version.slice(1) + kind];
}

// Recursively rejects field names that the model does not have.
function checkFields(value, type, parts, entry, errors) {
  if (value === null || value === undefined) {
    return;
  }
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (Array.isArray(value)) {
      value.forEach((v, i) => checkFields(v, array[1], [...parts, i], entry, errors));
    }
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) {
        checkFields(v, map[1], [...parts, k], entry, errors);
      }
    }
    return;
  }
  const cls = models[type];
  if (!cls || !cls.attributeTypeMap || typeof value !== "object" || Array.isArray(value)) {
    return; // a primitive, IntOrString, Quantity, free-form object: types are ajv's business
  }
  const known = new Map(cls.attributeTypeMap.map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    if (!known.has(k)) {
      const near = [...known.keys()].find((n) => n.toLowerCase() === k.toLowerCase());
      report(errors, entry, [...parts, k],
             `unknown field "${k}"` + (near ? ` (did you mean "${near}"?)` : ""));
    } else {
      checkFields(v, known.get(k), [...parts, k], entry, errors);
    }
  }
}

function ajvPath(instancePath) {
  return instancePath.split("/").slice(1).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

async function checkSchema(entry, errors) {
  const { apiVersion, kind } = entry.obj;
  if (typeof apiVersion !== "string" || typeof kind !== "string") {
    report(errors, entry, [], "apiVersion and kind are required");
    return;
  }
  if (kind === "Kustomization") {
    return; // not an API object: checkKustomization
  }
  const Model = await kubernetesModel(apiVersion, kind);
  const cls = clientNodeClass(apiVersion, kind);
  if (!Model || !cls) {
    report(errors, entry, ["kind"], `unknown apiVersion/kind ${apiVersion}/${kind}`);
    return;
  }
  try {
    new Model(entry.obj).validate();
  } catch (e) {
    for (const err of e.errors ?? [{ instancePath: "", message: e.message }]) {
      const where = ajvPath(err.instancePath ?? "");
      const extra = err.params?.allowedValues ? ` (${err.params.allowedValues.join(", ")})` : "";
      report(errors, entry, where, `${err.message}${extra}`);
    }
  }
  checkFields(entry.obj, cls.name, [], entry, errors);
}

// ---------------------------------------------------------------------------------------------
// Rules the schema cannot express

const kUnits = { "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: kMiB, Gi: 1024 * kMiB,
                 Ti: 1024 * 1024 * kMiB, m: 1e-3 };

/** A Kubernetes quantity ("192Mi", "500m", 2) as a number, or NaN. */
function quantity(q) {
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T|m)?$/.exec(String(q ?? ""));
  return m ? Number(m[1]) * kUnits[m[2] ?? ""] : NaN;
}

/** A cachecar size ("64MiB", "512", "1G": K/M/G and KB/MB/GB are binary too) in bytes, or NaN. */
function cachecarSize(s) {
  const m = /^([0-9]+)\s*(B|KiB|MiB|GiB|KB|MB|GB|K|M|G)?$/.exec(String(s ?? "").trim());
  if (!m) {
    return NaN;
  }
  const unit = (m[2] ?? "B").charAt(0);
  return Number(m[1]) * ({ B: 1, K: 1024, M: kMiB, G: 1024 * kMiB })[unit];
}

/** A cachecar duration ("250ms", "15s", "5m", "2h", "1d"; a bare number is seconds) in ms, or NaN. */
function cachecarDurationMs(d) {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?$/.exec(String(d ?? "").trim());
  return m ? Number(m[1]) * ({ ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 })[m[2] ?? "s"]
           : NaN;
}

/** Seconds a container's preStop hook sleeps: `sleep N` in an exec hook or the sleep action. */
function preStopSleepSeconds(container) {
  const hook = container.lifecycle?.preStop;
  if (typeof hook?.sleep?.seconds === "number") {
    return hook.sleep.seconds;
  }
  const cmd = hook?.exec?.command ?? [];
  if (cmd.length === 2 && /^(\/usr)?(\/bin\/)?sleep$/.test(cmd[0])) {
    const n = /^([0-9]+(?:\.[0-9]+)?)s?$/.exec(String(cmd[1]));
    return n ? Number(n[1]) : 0;
  }
  return 0;
}

function podTemplates(entry) {
  const o = entry.obj;
  if (["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"].includes(o.kind)) {
    return o.spec?.template ? [{ template: o.spec.template, base: ["spec", "template"] }] : [];
  }
  return [];
}

function allContainers(spec) {
  return [
    ...(spec?.initContainers ?? []).map((c, i) => ({ c, list: "initContainers", i })),
    ...(spec?.containers ?? []).map((c, i) => ({ c, list: "containers", i })),
  ];
}

function imageName(image) {
  const noDigest = String(image).split("@")[0];
  const slash = noDigest.lastIndexOf("/");
  const colon = noDigest.lastIndexOf(":");
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}

function isCachecar(container) {
  return container.name === "cachecar" || imageName(container.image ?? "").endsWith("cachecar");
}

function checkPodTemplate(entry, { template, base }, all, errors) {
  const spec = template.spec ?? {};
  const specPath = [...base, "spec"];
  const labels = template.metadata?.labels ?? {};
  const selector = entry.obj.spec?.selector?.matchLabels ?? {};
  for (const [k, v] of Object.entries(selector)) {
    if (labels[k] !== v) {
      report(errors, entry, ["spec", "selector", "matchLabels", k],
             `selector ${k}=${v} does not match the pod template's labels`);
    }
  }
  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  (spec.volumes ?? []).forEach((v, i) => {
    if (v.configMap && !all.some((e) => e.obj.kind === "ConfigMap" &&
                                        e.obj.metadata?.name === v.configMap.name)) {
      report(errors, entry, [...specPath, "volumes", i, "configMap", "name"],
             `ConfigMap "${v.configMap.name}" is not among the checked manifests`);
    }
  });
  for (const { c, list, i } of allContainers(spec)) {
    const cPath = [...specPath, list, i];
    if (typeof c.image !== "string" || c.image.trim() === "") {
      report(errors, entry, cPath, `container "${c.name}" has no image`);
    }
    const sidecar = list === "initContainers" && c.restartPolicy === "Always";
    if (c.restartPolicy !== undefined && !sidecar) {
      report(errors, entry, [...cPath, "restartPolicy"],
             "only an init container may set restartPolicy, and only to Always (a native sidecar)");
    }
    const portNames = new Set((c.ports ?? []).map((p) => p.name).filter(Boolean));
    for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
      const port = c[probe]?.httpGet?.port ?? c[probe]?.tcpSocket?.port;
      if (typeof port === "string" && !portNames.has(port)) {
        report(errors, entry, [...cPath, probe],
               `port "${port}" is not a named port of "${c.name}"`);
      }
    }
    (c.volumeMounts ?? []).forEach((m, j) => {
      if (!volumes.has(m.name)) {
        report(errors, entry, [...cPath, "volumeMounts", j, "name"], `no volume "${m.name}"`);
      }
    });
    if (isCachecar(c)) {
      checkCachecarContainer(entry, spec, c, cPath, volumes, all, errors);
    }
  }
}

function checkCachecarContainer(entry, podSpec, c, cPath, volumes, all, errors) {
  const sc = c.securityContext ?? {};
  const podSc = podSpec.securityContext ?? {};
  const scPath = [...cPath, "securityContext"];
  if ((sc.runAsNonRoot ?? podSc.runAsNonRoot) !== true) {
    report(errors, entry, scPath, "cachecar must set runAsNonRoot: true");
  }
  if (sc.readOnlyRootFilesystem !== true) {
    report(errors, entry, scPath, "cachecar must set readOnlyRootFilesystem: true");
  }
  if (sc.allowPrivilegeEscalation !== false) {
    report(errors, entry, scPath, "cachecar must set allowPrivilegeEscalation: false");
  }
  if (!(sc.capabilities?.drop ?? []).includes("ALL")) {
    report(errors, entry, scPath, "cachecar must drop ALL capabilities");
  }

  // Its configuration: the ConfigMap mounted at /etc/cachecar (the image's --config directory).
  const mount = (c.volumeMounts ?? []).find((m) => m.mountPath === "/etc/cachecar");
  const cmName = mount && volumes.get(mount.name)?.configMap?.name;
  const cm = all.find((e) => e.obj.kind === "ConfigMap" && e.obj.metadata?.name === cmName);
  if (!cm) {
    report(errors, entry, cPath, "cachecar has no ConfigMap mounted at /etc/cachecar");
    return;
  }
  let config;
  try {
    config = YAML.parse(cm.obj.data?.["cachecar.yaml"] ?? "");
  } catch (e) {
    report(errors, cm, ["data", "cachecar.yaml"], `not YAML: ${e.message.split("\n")[0]}`);
    return;
  }
  if (!config || typeof config !== "object") {
    report(errors, cm, ["data", "cachecar.yaml"],
           "missing (the ConfigMap needs a cachecar.yaml key)");
    return;
  }

  // Memory: what the memory caches may hold, plus the base.
  let cacheBytes = 0;
  for (const [name, cache] of Object.entries(config.caches ?? {})) {
    if (cache?.backend === "memory") {
      const bytes = cachecarSize(cache.options?.max_bytes);
      if (Number.isNaN(bytes)) {
        report(errors, cm, ["data", "cachecar.yaml"],
               `caches.${name}.options.max_bytes must be set for a memory cache in a pod`);
      } else {
        cacheBytes += bytes;
      }
    }
  }
  const mib = (b) => `${Math.ceil(b / kMiB)}Mi`;
  const res = c.resources ?? {};
  const request = quantity(res.requests?.memory);
  const limit = quantity(res.limits?.memory);
  if (!(request >= cacheBytes + kCachecarBaseBytes)) {
    report(errors, entry, [...cPath, "resources", "requests", "memory"],
           `must be at least ${mib(cacheBytes + kCachecarBaseBytes)} (memory caches ` +
           `${mib(cacheBytes)} + ${mib(kCachecarBaseBytes)}), is ${res.requests?.memory}`);
  }
  if (!(limit >= cacheBytes + 2 * kCachecarBaseBytes)) {
    report(errors, entry, [...cPath, "resources", "limits", "memory"],
           `must be at least ${mib(cacheBytes + 2 * kCachecarBaseBytes)} (memory caches ` +
           `${mib(cacheBytes)} + ${mib(2 * kCachecarBaseBytes)}), is ${res.limits?.memory}`);
  }
  const cpuLimit = quantity(res.limits?.cpu);
  if (typeof config.workers === "number" && !Number.isNaN(cpuLimit) &&
      config.workers > Math.ceil(cpuLimit)) {
    report(errors, entry, [...cPath, "resources", "limits", "cpu"],
           `workers: ${config.workers} event loops need at least ${config.workers} CPUs`);
  }

  // Ports: listen = the container's `http` port; upstream = a port of another container.
  const httpPort = (c.ports ?? []).find((p) => p.name === "http")?.containerPort;
  const listenPort = Number(/:(\d+)$/.exec(String(config.listen ?? ""))?.[1]);
  if (httpPort !== listenPort) {
    report(errors, entry, [...cPath, "ports"],
           `the port named http (${httpPort}) differs from the config's listen (${config.listen})`);
  }
  const upstream = /^http:\/\/(127\.0\.0\.1|localhost)(?::(\d+))?\/?$/.exec(
    String(config.upstream ?? ""));
  if (!upstream) {
    report(errors, cm, ["data", "cachecar.yaml"],
           `upstream ${config.upstream} is not the pod's loopback (http://127.0.0.1:PORT)`);
  } else {
    const port = Number(upstream[2] ?? 80);
    const others = allContainers(podSpec).filter(({ c: o }) => o !== c);
    if (!others.some(({ c: o }) => (o.ports ?? []).some((p) => p.containerPort === port))) {
      report(errors, entry, cPath,
             `no other container of the pod declares the upstream port ${port}`);
    }
  }
  // The probes talk to the admin listener; until the config has one they fail in a cluster.
  const adminPort = (c.ports ?? []).find((p) => p.name === "admin")?.containerPort;
  const probed = ["startupProbe", "livenessProbe", "readinessProbe"].some(
    (p) => c[p]?.httpGet !== undefined &&
           (c[p].httpGet.port === "admin" || c[p].httpGet.port === adminPort));
  if (probed) {
    const adminListen = config.admin?.listen;
    if (adminListen === undefined) {
      warnings.add(`${cm.file}:${lineOf(cm, ["data", "cachecar.yaml"])}: ${describe(cm)}: ` +
                    "no admin: {listen: 0.0.0.0:" + adminPort + "} yet: the httpGet probes of " +
                    `${describe(entry)} will fail in a cluster`);
    } else if (!new RegExp(`^0\\.0\\.0\\.0:${adminPort}$`).test(String(adminListen))) {
      report(errors, cm, ["data", "cachecar.yaml"],
             `admin.listen ${adminListen} must be 0.0.0.0:${adminPort} for the kubelet's probes`);
    }
  }
  // /readyz also fails while the app is unreachable: as a liveness probe it would restart
  // cachecar for the app's outage, and as a native sidecar's startup probe it would wait
  // forever for an app that only starts after it.
  const sidecar = c.restartPolicy === "Always";
  for (const probe of sidecar ? ["livenessProbe", "startupProbe"] : ["livenessProbe"]) {
    if (/^\/readyz\b/.test(String(c[probe]?.httpGet?.path ?? ""))) {
      report(errors, entry, [...cPath, probe, "httpGet", "path"],
             `${probe} must not use /readyz, which fails while the app is unreachable` +
             (probe === "startupProbe" ? " (the app starts only after this probe passes)"
                                       : " (use /healthz)"));
    }
  }
  // The token variable the config names must come from the container's env (a Secret).
  const tokenEnv = config.admin?.token_env;
  if (tokenEnv !== undefined && !(c.env ?? []).some((e) => e.name === tokenEnv)) {
    report(errors, entry, [...cPath, "env"],
           `admin.token_env ${tokenEnv} is not in cachecar's env (give it from a Secret)`);
  }
  // Shutdown: the preStop sleep and the drain (and, for a native sidecar, the regular
  // containers' preStop sleeps, as it is stopped after them) within the grace period, with a
  // second to spare for the exit itself.
  const drainMs = config.drain_timeout === undefined ? 10e3
                                                     : cachecarDurationMs(config.drain_timeout);
  const grace = podSpec.terminationGracePeriodSeconds ?? 30;
  const before = sidecar ? Math.max(0, ...(podSpec.containers ?? []).map(preStopSleepSeconds))
                         : 0;
  const own = preStopSleepSeconds(c);
  if (Number.isNaN(drainMs)) {
    report(errors, cm, ["data", "cachecar.yaml"],
           `drain_timeout ${config.drain_timeout} is not a duration`);
  } else if (before + own + drainMs / 1e3 + 1 > grace) {
    const parts = [...(sidecar ? [`the app's preStop sleep (${before} s)`] : []),
                   ...(own > 0 ? [`cachecar's preStop sleep (${own} s)`] : []),
                   `drain_timeout (${config.drain_timeout ?? "10s, the default"})`];
    const gracePath = podSpec.terminationGracePeriodSeconds === undefined
      ? cPath.slice(0, -2) : [...cPath.slice(0, -2), "terminationGracePeriodSeconds"];
    report(errors, entry, gracePath,
           `terminationGracePeriodSeconds ${grace} leaves no time for ${parts.join(" + ")} ` +
           `+ 1 s to exit`);
  }
}

function checkService(entry, all, errors) {
  const selector = entry.obj.spec?.selector ?? {};
  const pods = all.flatMap((e) => podTemplates(e)).filter(({ template }) =>
    Object.entries(selector).every(([k, v]) => template.metadata?.labels?.[k] === v));
  if (Object.keys(selector).length > 0 && pods.length === 0) {
    report(errors, entry, ["spec", "selector"], "selects no pod template of the checked manifests");
    return;
  }
  (entry.obj.spec?.ports ?? []).forEach((p, i) => {
    if (typeof p.targetPort !== "string") {
      return;
    }
    for (const { template } of pods) {
      const names = allContainers(template.spec)
        .flatMap(({ c }) => (c.ports ?? []).map((q) => q.name));
      if (!names.includes(p.targetPort)) {
        report(errors, entry, ["spec", "ports", i, "targetPort"],
               `no container port named "${p.targetPort}" in the selected pods`);
      }
    }
  });
}

function checkKustomization(entry, all, errors) {
  const allowed = new Set(["apiVersion", "kind", "resources", "images", "namespace", "namePrefix",
                           "nameSuffix", "labels", "commonLabels", "commonAnnotations", "patches",
                           "configMapGenerator", "secretGenerator", "replicas"]);
  for (const k of Object.keys(entry.obj)) {
    if (!allowed.has(k)) {
      report(errors, entry, [k], `unknown field "${k}"`);
    }
  }
  const dir = path.dirname(entry.file);
  const images = all.filter((e) => entry.obj.resources?.includes(path.basename(e.file)) &&
                                   path.dirname(e.file) === dir)
    .flatMap((e) => podTemplates(e))
    .flatMap(({ template }) => allContainers(template.spec))
    .map(({ c }) => imageName(c.image ?? ""));
  (entry.obj.resources ?? []).forEach((r, i) => {
    if (!fs.existsSync(path.join(dir, r))) {
      report(errors, entry, ["resources", i], `${r} does not exist`);
    }
  });
  (entry.obj.images ?? []).forEach((img, i) => {
    if (!images.includes(img.name)) {
      report(errors, entry, ["images", i, "name"],
             `no container of the listed resources uses the image ${img.name}`);
    }
  });
}

// ---------------------------------------------------------------------------------------------

async function checkAll(files) {
  const errors = [];
  const all = files.flatMap((f) => loadFile(f, errors));
  for (const entry of all) {
    await checkSchema(entry, errors);
  }
  for (const entry of all) {
    if (entry.obj.kind === "Kustomization") {
      checkKustomization(entry, all, errors);
    } else if (entry.obj.kind === "Service") {
      checkService(entry, all, errors);
    }
    for (const t of podTemplates(entry)) {
      checkPodTemplate(entry, t, all, errors);
    }
  }
  for (const w of warnings) {
    console.log(`WARN: ${w}`);
  }
  for (const e of errors) {
    console.log(`ERROR: ${e}`);
  }
  console.log(`k8s-schema-check: ${all.length} documents in ${files.length} files, ` +
              `${errors.length} errors`);
  return errors.length === 0 ? 0 : 1;
}

function extractConfig(file, out) {
  const errors = [];
  const cm = loadFile(file, errors).find((e) => e.obj.kind === "ConfigMap");
  const text = cm?.obj.data?.["cachecar.yaml"];
  if (errors.length > 0 || typeof text !== "string") {
    console.error(`${file}: no ConfigMap with a cachecar.yaml key`, errors.join("\n"));
    return 1;
  }
  fs.writeFileSync(out, text);
  return 0;
}

function playCopy(out, renames, files) {
  const errors = [];
  const docs = files.flatMap((f) => loadFile(f, errors)).map((e) => e.obj);
  if (errors.length > 0) {
    console.error(errors.join("\n"));
    return 1;
  }
  const lines = [];
  for (const obj of docs) {
    if (obj.kind === "Deployment") {
      obj.spec.replicas = 1;
      for (const { c } of allContainers(obj.spec.template.spec)) {
        const to = renames.get(imageName(c.image ?? ""));
        if (to) {
          c.image = to;
        }
        c.imagePullPolicy = "Never";
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref) {
            lines.push(`secret ${ref.name} ${ref.key}`);
          }
        }
        // podman 4.3 turns a liveness probe into a healthcheck command (`curl -f
        // http://localhost:PORT/PATH`, with port 0 for a named port) that needs curl inside the
        // container (the cachecar image has none) and systemd timers to run; it ignores
        // readiness and startup probes. So the probes are left out here and listed for
        // check-manifests.sh, which sends the same requests from inside the pod.
        for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
          const get = c[probe]?.httpGet;
          if (get) {
            const port = typeof get.port === "number" ? get.port
              : (c.ports ?? []).find((p) => p.name === get.port)?.containerPort;
            lines.push(`probe ${c.name} ${probe} http ${port} ${get.path ?? "/"}`);
          } else if (c[probe]) {
            const handler = ["exec", "tcpSocket", "grpc"].find((k) => c[probe][k]) ?? "unknown";
            lines.push(`probe ${c.name} ${probe} ${handler} - -`);
          }
          delete c[probe];
        }
        // podman 4.3 publishes every containerPort on the host (refused with --network none,
        // on every host interface with a bridge): the pod is reached with `podman exec` instead.
        delete c.ports;
      }
    }
  }
  fs.writeFileSync(out, docs.map((d) => YAML.stringify(d)).join("---\n"));
  for (const obj of docs.filter((d) => d.kind === "ConfigMap")) {
    lines.unshift(`configmap ${obj.metadata.name}`);
  }
  console.log(lines.join("\n"));
  return 0;
}

async function main(argv) {
  if (argv[0] === "--extract-config" && argv.length === 3) {
    return extractConfig(argv[1], argv[2]);
  }
  if (argv[0] === "--play-copy" && argv.length >= 3) {
    const renames = new Map();
    let i = 2;
    for (; argv[i] === "--image"; i += 2) {
      const [from, to] = argv[i + 1].split("=");
      renames.set(from, to);
    }
    return playCopy(argv[1], renames, argv.slice(i));
  }
  if (argv.length === 0 || argv[0].startsWith("-")) {
    console.error("usage: k8s-schema-check.mjs FILE... | --extract-config CONFIGMAP OUT | " +
                  "--play-copy OUT [--image NAME=IMAGE]... FILE...");
    return 2;
  }
  return checkAll(argv);
}

process.exitCode = await main(process.argv.slice(2));
