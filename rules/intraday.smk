# The intraday DAG: current-slot targets, built while the task is in scope.
# It reads daily data from the market database, never through daily targets,
# so a daily run and intraday ticks never plan the same files.
# Targets: state/targets/intraday/<session>/<task>/<HHMM>.json


rule price_data:
    output:
        "state/targets/intraday/{session}/price_data/{slot}.json",
    log:
        "state/logs/intraday/{session}/price_data/{slot}.log",
    shell:
        RUN_TASK


rule intraday_features:
    input:
        price_data=get_upstream_slot("price_data"),
    output:
        "state/targets/intraday/{session}/intraday_features/{slot}.json",
    log:
        "state/logs/intraday/{session}/intraday_features/{slot}.log",
    shell:
        RUN_TASK


rule intraday_signals:
    input:
        intraday_features=get_upstream_slot("intraday_features"),
    output:
        "state/targets/intraday/{session}/intraday_signals/{slot}.json",
    log:
        "state/logs/intraday/{session}/intraday_signals/{slot}.log",
    shell:
        RUN_TASK
