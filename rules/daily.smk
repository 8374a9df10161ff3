# The daily DAG: one rule per data source, built once per session.
# Dependencies are the rules' inputs; settings come from config.yaml's tasks.
# Targets: state/targets/daily/<session>/<task>.json (see orchestrator/sentinel.py).
# `priority: 10` marks the two longest chains (assets, prices_daily, options/
# earnings, ml_features, signals; and assets, news, sentiment, ml_features): with
# more ready jobs than cores Snakemake does not favour them on its own, and the
# run would take a wave longer.


# Tier 0: the universe every other source reads.
rule assets:
    output:
        "state/targets/daily/{session}/assets.json",
    log:
        "state/logs/daily/{session}/assets.log",
    priority: 10
    shell:
        RUN_TASK


# Tier 1: sources that need only the universe (economic needs nothing).
rule prices_daily:
    input:
        assets="state/targets/daily/{session}/assets.json",
    output:
        "state/targets/daily/{session}/prices_daily.json",
    log:
        "state/logs/daily/{session}/prices_daily.log",
    priority: 10
    shell:
        RUN_TASK


rule fundamentals:
    input:
        assets="state/targets/daily/{session}/assets.json",
    output:
        "state/targets/daily/{session}/fundamentals.json",
    log:
        "state/logs/daily/{session}/fundamentals.log",
    shell:
        RUN_TASK


rule insider:
    input:
        assets="state/targets/daily/{session}/assets.json",
    output:
        "state/targets/daily/{session}/insider.json",
    log:
        "state/logs/daily/{session}/insider.log",
    shell:
        RUN_TASK


rule analyst:
    input:
        assets="state/targets/daily/{session}/assets.json",
    output:
        "state/targets/daily/{session}/analyst.json",
    log:
        "state/logs/daily/{session}/analyst.log",
    shell:
        RUN_TASK


rule economic:
    output:
        "state/targets/daily/{session}/economic.json",
    log:
        "state/logs/daily/{session}/economic.log",
    shell:
        RUN_TASK


# Tier 2: news, then its sentiment.
rule news:
    input:
        assets="state/targets/daily/{session}/assets.json",
    output:
        "state/targets/daily/{session}/news.json",
    log:
        "state/logs/daily/{session}/news.log",
    priority: 10
    shell:
        RUN_TASK


rule sentiment:
    input:
        news="state/targets/daily/{session}/news.json",
    output:
        "state/targets/daily/{session}/sentiment.json",
    log:
        "state/logs/daily/{session}/sentiment.log",
    priority: 10
    shell:
        RUN_TASK


# Tier 3: derived from prices.
rule options:
    input:
        assets="state/targets/daily/{session}/assets.json",
        prices_daily="state/targets/daily/{session}/prices_daily.json",
    output:
        "state/targets/daily/{session}/options.json",
    log:
        "state/logs/daily/{session}/options.log",
    priority: 10
    shell:
        RUN_TASK


rule earnings:
    input:
        assets="state/targets/daily/{session}/assets.json",
        prices_daily="state/targets/daily/{session}/prices_daily.json",
    output:
        "state/targets/daily/{session}/earnings.json",
    log:
        "state/logs/daily/{session}/earnings.log",
    priority: 10
    shell:
        RUN_TASK


# Tier 4: features from every source.
rule ml_features:
    input:
        prices_daily="state/targets/daily/{session}/prices_daily.json",
        fundamentals="state/targets/daily/{session}/fundamentals.json",
        economic="state/targets/daily/{session}/economic.json",
        news="state/targets/daily/{session}/news.json",
        sentiment="state/targets/daily/{session}/sentiment.json",
        insider="state/targets/daily/{session}/insider.json",
        analyst="state/targets/daily/{session}/analyst.json",
        earnings="state/targets/daily/{session}/earnings.json",
        options="state/targets/daily/{session}/options.json",
    output:
        "state/targets/daily/{session}/ml_features.json",
    log:
        "state/logs/daily/{session}/ml_features.log",
    priority: 10
    shell:
        RUN_TASK


# Tier 5: trading signals.
rule signals:
    input:
        ml_features="state/targets/daily/{session}/ml_features.json",
    output:
        "state/targets/daily/{session}/signals.json",
    log:
        "state/logs/daily/{session}/signals.log",
    priority: 10
    shell:
        RUN_TASK
