-- One database per service (each service owns its tables); Temporal creates its own.
CREATE DATABASE registration;
CREATE DATABASE verification;
CREATE DATABASE scoring;
CREATE DATABASE awards;
