"""The mlserve Pulumi program and the operator's tools around it."""
