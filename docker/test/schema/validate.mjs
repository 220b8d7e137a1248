// validate.mjs compose|k8s FILE... — validates deployment files against
// their published schemas and prints one line per file, "ok NAME" or
// "not ok NAME: WHY", for docker/test/validate.py to count.
//   compose  the Compose specification's JSON schema (the copy dclint ships)
//   k8s      every object against Kubernetes' OpenAPI schemas
//            (kubernetes-models) or Prometheus Operator's (ServiceMonitor)
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";

const here = path.dirname(fileURLToPath(import.meta.url));
const [mode, ...files] = process.argv.slice(2);

function report(name, errors) {
	if (errors.length === 0)
		console.log(`ok ${name}`);
	else
		console.log(`not ok ${name}: ${errors.slice(0, 8).join("; ")}`);
}

let composeValidate;

function compose(file) {
	if (!composeValidate) {
		const schema = JSON.parse(fs.readFileSync(
		    path.join(here, "node_modules/dclint/schemas/compose.schema.json"), "utf8"));
		// Draft-07, named by an URL spelling Ajv does not know.
		delete schema.$schema;
		const ajv = new Ajv({ allErrors: true, strict: false });
		composeValidate = ajv.compile(schema);
	}
	const doc = YAML.parse(fs.readFileSync(file, "utf8"), { merge: true });
	if (composeValidate(doc))
		return [];
	return composeValidate.errors.map((e) =>
	    `${e.instancePath || "/"} ${e.message}${e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : ""}`);
}

// apiVersion and kind → the module of its model.
function modelPath(apiVersion, kind) {
	if (apiVersion.startsWith("monitoring.coreos.com/"))
		return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
	return `kubernetes-models/${apiVersion}/${kind}`;
}

async function k8s(file) {
	const errors = [];
	const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"));
	let n = 0;
	for (const d of docs) {
		const obj = d.toJS();
		if (!obj)
			continue;
		n++;
		const where = `${obj.kind} ${obj.metadata?.name}`;
		let Model;
		try {
			const mod = await import(modelPath(obj.apiVersion, obj.kind));
			Model = mod[obj.kind];
		} catch (e) {
			errors.push(`${where}: no schema for ${obj.apiVersion} ${obj.kind}`);
			continue;
		}
		try {
			new Model(obj).validate();
		} catch (e) {
			errors.push(`${where}: ${e.message}`);
		}
	}
	if (n === 0)
		errors.push("no objects");
	return errors;
}

for (const f of files) {
	const name = `${mode} schema ${path.basename(path.dirname(f))}/${path.basename(f)}`;
	try {
		report(name, mode === "compose" ? compose(f) : await k8s(f));
	} catch (e) {
		report(name, [String(e.message || e)]);
	}
}
