# Datasets: raw files + tensors + manifest.json (sha256 of each raw file).


rule prepare_data:
    input:
        code=library("core.data", "core.prepare", "core.seeding", "plan.catalog"),
    output:
        manifest="data/{dataset}/manifest.json",
        tensors="data/{dataset}/tensors.safetensors",
    log:
        "data/{dataset}/prepare.log",
    conda:
        "../../envs/lth.yaml"
    params:
        source=lambda w: (
            f"--source {shlex.quote(config['datasets']['source'][w.dataset])}"
            if config["datasets"]["source"].get(w.dataset)
            else ""
        ),
        download=config["datasets"]["download"],
        speech=" ".join(
            f"--{key.replace('_', '-')} {value}"
            for key, value in sorted(config["datasets"].items())
            if key.startswith("speech_")
        ),
    shell:
        "python -m lth prepare --dataset {wildcards.dataset} --root data/{wildcards.dataset} "
        "{params.source} --download {params.download} {params.speech} 2>&1 | tee {log}"
