"""Other orchestrators' DAG-file vocabularies, mapped onto Slipstream's authoring API."""
