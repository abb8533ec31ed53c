INSERT INTO Slides VALUES ('s1', 'one.svs', 'data/slides/one.svs');
INSERT INTO Annotations VALUES ('s1', NULL, 'a/initial_annotation.xml', '2021-01-01 08:00:00', NULL, NULL, NULL, NULL);
INSERT INTO Annotations VALUES ('s1', 'a/initial_annotation.xml', 'a/updated_at_2021-01-01 09:00:00b', '2021-01-01 09:00:00', 0, 0, 10, 10);
INSERT INTO Annotations VALUES ('s1', 'a/updated_at_2021-01-01 09:00:00b', 'a/updated_at_2021-01-01 09:00:00a', '2021-01-01 09:00:00', 0, 0, 10, 10);
